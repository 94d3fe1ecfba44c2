//! The data plane: an HTTP proxy on every listener's address and port.
