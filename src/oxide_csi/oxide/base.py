"""What every group of endpoint methods shares: the transport, the config, and small helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from oxide_csi.oxide.client_config import OxideConfig
from oxide_csi.oxide.generation import Generation, detect_generation
from oxide_csi.oxide.page_walk import paginate
from oxide_csi.oxide.selectors import NameOrId, path_segment, project_query
from oxide_csi.oxide.transport import Transport


class ClientBase:
    """Holds the transport; the endpoint groups (disks, instances) build on these helpers."""

    _t: Transport
    _cfg: OxideConfig
    _generation: Generation | None = None
    _generation_lock: asyncio.Lock | None = None

    async def generation(self, *, deadline: float | None = None) -> Generation:
        """The rack's API generation, probed once (see :mod:`.generation`) and then kept."""
        if self._generation is None:
            if self._generation_lock is None:
                self._generation_lock = asyncio.Lock()
            async with self._generation_lock:
                if self._generation is None:
                    self._generation = await detect_generation(self._t, deadline=deadline)
        return self._generation

    def _path(self, template: str, **selectors: NameOrId) -> str:
        """Fill an OpenAPI template (``/v1/disks/{disk}``) with percent-encoded selectors."""
        return template.format(**{k: path_segment(v) for k, v in selectors.items()})

    def _scoped(self, selector: NameOrId) -> dict[str, str | int]:
        """The ``project`` query a name needs and a UUID must not have."""
        return dict(project_query(selector, self._cfg.project))

    async def _view(
        self, template: str, key: str, selector: NameOrId, deadline: float | None
    ) -> Any:
        """GET one resource by name (in our project) or by id."""
        return await self._t.request(
            "GET",
            template,
            self._path(template, **{key: selector}),
            query=self._scoped(selector),
            deadline=deadline,
        )

    def _list(
        self,
        template: str,
        path: str,
        query: dict[str, str | int],
        deadline: float | None,
    ) -> AsyncIterator[Any]:
        return paginate(
            self._t, template, path, query=query, limit=self._cfg.page_size, deadline=deadline
        )
