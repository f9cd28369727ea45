"""The controller's side of the Kubernetes API: state, Leases, Nodes and Events.

With ``--state-backend kubernetes`` the controller keeps what it owes each instance in
ConfigMaps of its namespace (:mod:`.records`), acts on an instance only while it holds that
instance's Lease (:mod:`.leases`), cycles only attachable Nodes of this cluster (:mod:`.nodes`)
and tells the platform team what it does in Events (:mod:`.events`, :mod:`.attacher`).
:mod:`.wiring` puts them together.

Nothing here is imported at package import: lightkube (and with it an HTTP stack and the
Kubernetes models) is loaded only by a controller that uses this backend, never by a node
plugin or the file backend. :mod:`.settings` is plain data and safe to import anywhere.
"""
