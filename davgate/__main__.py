from davgate.cli import main

raise SystemExit(main())
