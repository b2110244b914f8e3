"""`python -m driveline`: how the supervisor starts its child processes."""

from driveline.cli import main

main()
