"""Screens of oc-tui: one module per screen or dialog.

Host tabs subclass :class:`~oc_tui.screens.host_tab.HostTab` and are listed once in
:data:`oc_tui.screens.host.HOST_TABS` (the host screen, its keys and ``?`` come from that list).
Top-level ``:`` views are registered once in :data:`oc_tui.screens.views.VIEWS`; a view of API
resources is shown by the generic :class:`~oc_tui.screens.resource.ResourceScreen`.
"""
