"""Allow ``python -m oxide_csi``, which behaves exactly like the ``oxide-csi`` console script."""

import sys

from oxide_csi.launch import main

sys.exit(main())
