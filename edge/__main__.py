"""`python -m edge` is the same as `roadwatch-edge`."""

from edge.cli import main

raise SystemExit(main())
