"""What the master and the workers share; neither imports the other's private modules for it.

Nothing here imports gevent: the master never does.
"""
