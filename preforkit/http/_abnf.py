"""The RFC 9110/9112 grammar this package relies on, as compiled regexes.

Everything operates on ``str`` decoded as latin-1, so each code point is one
octet of the wire.
"""

from __future__ import annotations

import re

# RFC 9110 §5.6.2: token = 1*tchar
TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
token_re = re.compile(TOKEN)

# RFC 9110 §5.5: field-value = *field-content; field-vchar = VCHAR / obs-text.
# OWS around the value is not part of it.  NUL, CR and LF never match.
_VCHAR = r"\x21-\x7e\x80-\xff"
FIELD_VALUE = rf"(?:[{_VCHAR}](?:[\t\x20-\x7e\x80-\xff]*[{_VCHAR}])?)?"

# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS.  No whitespace
# is allowed between the name and the colon (§5.1), and obs-fold (a line that
# starts with SP or HTAB, §5.2) cannot match because names cannot be empty.
field_line_re = re.compile(rf"({TOKEN}):[ \t]*({FIELD_VALUE})[ \t]*")

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
# The target is any run of visible ASCII (§3.2); its form is checked later.
request_line_re = re.compile(rf"({TOKEN}) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")

# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT; anything that
# looks like a version but is not 1.0/1.1 gets 505, everything else 400.
loose_version_re = re.compile(rf"{TOKEN} [\x21-\x7e]+ HTTP/[0-9]+\.[0-9]+")

# RFC 3986 §3.2.2 / RFC 9110 §7.2: Host = uri-host [ ":" port ].
host_re = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+\]"
    r"|[-A-Za-z0-9._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)

# RFC 9112 §3.2.2: absolute-form = absolute-URI (we accept http and https).
absolute_form_re = re.compile(r"(?i:(https?))://([^/?#]*)([^#]*)")

# RFC 9112 §7.1: chunk-size = 1*HEXDIG, then chunk-ext = *( BWS ";" BWS
# chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), ext-val = token / quoted-string.
# Whitespace only before a ";" (BWS): "5 \r\n" is refused, since a proxy in
# front that parses the size differently could be used to smuggle a request.
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
chunk_line_re = re.compile(rf"([0-9A-Fa-f]{{1,16}})((?:[ \t]*;[ \t]*{TOKEN}(?:[ \t]*=[ \t]*(?:{TOKEN}|{_QUOTED}))?)*)")
