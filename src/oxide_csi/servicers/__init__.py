"""CSI servicers: validate requests and translate between CSI messages and domain calls."""
