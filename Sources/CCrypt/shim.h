// libxcrypt (Debian's libcrypt1 / libcrypt-dev): crypt_r and crypt_gensalt_rn give the
// yescrypt ($y$), bcrypt ($2b$) and sha512crypt ($6$) hashes Debian and Dovecot use.
#include <crypt.h>
