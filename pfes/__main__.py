from pfes.cli import main

raise SystemExit(main())
