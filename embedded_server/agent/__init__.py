"""``oc-agent``: dials the control plane from the host and answers its requests."""
