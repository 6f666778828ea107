from cryptodb.cli import main

raise SystemExit(main())
