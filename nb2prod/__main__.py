"""`python -m nb2prod`: the command line."""

from nb2prod.cli.main import main

main()
