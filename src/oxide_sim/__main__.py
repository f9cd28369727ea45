"""``python -m oxide_sim``: the simulator's command line (see ``oxide_sim.cli``)."""

from oxide_sim.cli import main

raise SystemExit(main())
