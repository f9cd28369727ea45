"""In-process fake CSI drivers, used only to prove that the checks can fail."""
