# Types for the compiled twin of _cycle.py (preforkit/_accel.py); the Python module is the reference.

cpdef str server_name(host, listener_host)
