"""``python -m kube_sim``: the test API server's command line (see ``kube_sim.cli``)."""

from kube_sim.cli import main

raise SystemExit(main())
