"""The Docker-facing side: the libnetwork remote driver protocol over HTTP on a unix socket."""
