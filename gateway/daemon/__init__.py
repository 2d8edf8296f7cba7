"""The running daemon: the composition root and the edges that serve, watch and deliver."""
