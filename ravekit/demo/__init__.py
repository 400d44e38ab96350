"""The demo and fixture model: a scripted band vocoder with RAVE's nn~ interface, and its demo signal."""
