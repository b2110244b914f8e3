"""The YAML call-flow engine: load and validate flows, run them on a `CallChannel`.

Pure core: nothing here imports pjsua2, SQLAlchemy or Redis (tests/ivr/test_purity.py checks).
The SIP worker supplies the channel, `records.flow_records.SqlRecords` the data.

    flows = load_flows("flows")                      # raises FlowLoadError listing every problem
    result = await FlowEngine(flows, records).run(channel, store=store, caller="+15552010001")
    print(result.script())
"""

from ivr.flow.engine import CallResult, FlowEngine, Outcome
from ivr.flow.loader import FlowLoadError, Problem, load_flows
from ivr.flow.schema import Flow, FlowSet

__all__ = [
    "CallResult",
    "Flow",
    "FlowEngine",
    "FlowLoadError",
    "FlowSet",
    "Outcome",
    "Problem",
    "load_flows",
]
