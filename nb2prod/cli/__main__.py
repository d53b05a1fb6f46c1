from nb2prod.cli.main import main

main()
