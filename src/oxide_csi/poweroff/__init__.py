"""Graceful power-off: the controller asks a node's own plugin to shut its host down in order.

Oxide's stop pulls the virtual power cord. Before a cycle the controller can instead ask the
node plugin on that instance to power the guest off through its init, so kubelet's graceful
node shutdown ends pods with their grace periods and every filesystem is synced and unmounted;
Oxide then reports the instance ``stopped`` and the cycle goes on.

Shared by both sides (the node imports nothing of the controller or the Oxide client):

* :mod:`.messages`: the heartbeat a node plugin keeps, the request the controller writes, and
  the rule by which a node acts on a request (its instance, its boot, its own start, unexpired);
* :mod:`.files`: the channel under a shared state directory (``oxide-csi dev``, one machine);
* :mod:`.kube`: the channel through Kubernetes (a Lease per node, a ConfigMap per request);
* :mod:`.agent`: the node's side: the heartbeat, the watch, and the power-off itself.

The controller's side is ``oxide_csi.controller.attach.graceful``.
"""
