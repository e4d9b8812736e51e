from sandcat.cli import main

raise SystemExit(main())
