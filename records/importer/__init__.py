"""Import a DMS export (CSV or JSON) into the shared record: `driveline import FILE`.

The DMS is the record of truth; this keeps Driveline's copy in step. Rows are upserted by their
DMS keys, so running the same file twice changes nothing. The row format is in
records/IMPORT.md. The importer is a table of row type → columns + applier (`run.TABLE`):

    reading.py        a CSV or JSON file → (row number, fields) pairs, or ImportFileError
    fields.py         one row's cells → typed values (phones, times, hours, ...), or RowError
    applying.py       what the appliers share: RowType, Changes, references by DMS id
    stores.py         store, department rows
    people.py         advisor, customer rows
    vehicles.py       vehicle, purchase rows
    repair_orders.py  repair_order, line_item rows (a status change goes through usecases/status.py)
    run.py            TABLE, the run (a savepoint per row) and its ImportReport

A new row type is one RowType (its columns and apply function) in TABLE.
"""

from records.importer.fields import Row, RowError, parse_hours_text
from records.importer.reading import ImportFileError, read_rows
from records.importer.run import TABLE, TYPES, ImportReport, import_path, import_rows

__all__ = [
    "TABLE",
    "TYPES",
    "ImportFileError",
    "ImportReport",
    "Row",
    "RowError",
    "import_path",
    "import_rows",
    "parse_hours_text",
    "read_rows",
]
