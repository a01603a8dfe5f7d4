# Types for the compiled twin of _accept.py (preforkit/_accel.py); the Python module is the reference.
# _accept_ipv4 exists only here: Acceptor.take calls it when compiled, for an IPv4 listener, and
# it gives what accept_client gives (a non-blocking socket and a (host, port) peer) or raises the
# same OSError.
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport strerror
from posix.unistd cimport close

cdef extern from *:
    """
    #include <sys/socket.h>
    #include <netinet/in.h>
    #include <arpa/inet.h>
    #ifdef SOCK_NONBLOCK  /* Linux, the BSDs: accept4() */
    #define PREFORKIT_ACCEPT4 1
    static int preforkit_accept4(int fd, struct sockaddr_in *address) {
        socklen_t length = sizeof(*address);
        return accept4(fd, (struct sockaddr *)address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    #else  /* macOS: the Python path (Acceptor.take never calls _accept_ipv4) */
    #define PREFORKIT_ACCEPT4 0
    #define SOCK_NONBLOCK 0
    static int preforkit_accept4(int fd, struct sockaddr_in *address) { errno = ENOSYS; return -1; }
    #endif
    """
    bint ACCEPT4 "PREFORKIT_ACCEPT4"
    int SOCK_NONBLOCK
    int SOCK_STREAM
    int AF_INET
    cdef struct in_addr:
        unsigned int s_addr
    cdef struct sockaddr_in:
        unsigned short sin_port
        in_addr sin_addr
    int preforkit_accept4(int fd, sockaddr_in *address)
    unsigned short ntohs(unsigned short value)


cdef inline object _accept_ipv4(int listener_fd, dict texts, Py_ssize_t size, new_socket):
    """accept4() a waiting IPv4 client: (non-blocking socket, (host, port)), or None when none waits."""
    cdef sockaddr_in address
    cdef int fd
    cdef unsigned char *octets
    while True:
        fd = preforkit_accept4(listener_fd, &address)
        if fd >= 0:
            break
        if errno == EAGAIN:  # EWOULDBLOCK is EAGAIN where accept4 is
            return None
        if errno != EINTR:
            code = errno
            raise OSError(code, strerror(code).decode("utf-8", "replace"))
        PyErr_CheckSignals()  # as CPython does on EINTR (PEP 475): a handler may raise
    try:
        key = address.sin_addr.s_addr
        host = texts.get(key)
        if host is None:
            octets = <unsigned char *>&address.sin_addr
            host = f"{octets[0]}.{octets[1]}.{octets[2]}.{octets[3]}"
            if len(texts) >= size:
                texts.clear()
            texts[key] = host
        # SOCK_NONBLOCK in the type: the socket object takes the fd as non-blocking, without an ioctl
        sock = new_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, fd)
    except BaseException:
        close(fd)
        raise
    return sock, (host, ntohs(address.sin_port))


cdef class Acceptor:
    cdef public object connections
    cdef public object counters
    cdef public bint fast
    cdef public int fd
    cdef public object hub
    cdef public object listener
    cdef public object local
    cdef public object nodelay
    cdef public object server
    cdef public object tls_context
