from shopstream.cli.app import main

main()
