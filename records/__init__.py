"""The shared customer record: SQL models, migrations, queries, import and demo data.

This is an adapter at the edge: the flow engine reaches it only through `ivr.flow.records.Records`.
"""
