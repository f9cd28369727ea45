"""Configuration facts that the plugin's settings and the Oxide client both rely on.

Each is defined here once, in a module that imports nothing of either side, so that the
command line (``oxide_csi.config``) and the client (``oxide_csi.oxide.client_config``) cannot
drift apart, and so that the node plugin, which reads its settings through ``oxide_csi.config``,
does not load the Oxide client package to learn a default.
"""

from __future__ import annotations

import re

from oxide_csi import __version__

#: The API version sent in the ``api-version`` header: the first version whose disk-create body
#: has ``disk_backend`` (release v18). Nexus serves every version from 2025112000.0.0 up to its
#: own newest, so pinning the oldest version whose shapes we send keeps the plugin working on
#: every rack from v18 on; newer pins are refused by older racks with 400 "server does not
#: support this API version".
DEFAULT_API_VERSION = "2026021301.0.0"

#: What an ``api-version`` value must look like (dropshot wants a semver triple).
API_VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")

#: The ``user-agent`` of every request to the Oxide API, so a rack's logs name the plugin.
USER_AGENT = f"oxide-csi/{__version__}"


class ConfigError(ValueError):
    """A setting is missing or malformed. The message is one line and never holds a secret."""
