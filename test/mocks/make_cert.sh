#!/bin/sh
# Generate a self-signed certificate for 127.0.0.1 / localhost (for smtp_sink.py).
#   test/mocks/make_cert.sh DIR      -> DIR/cert.pem, DIR/key.pem
# Needs the openssl CLI (Debian: apt-get install openssl).
set -eu
dir=${1:?usage: make_cert.sh DIR}
if ! command -v openssl >/dev/null 2>&1; then
    echo "make_cert.sh: openssl not found; install it with: apt-get install openssl" >&2
    exit 2
fi
mkdir -p "$dir"
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<CNF
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
[ext]
subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
CNF
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -config "$cfg" >/dev/null 2>&1
chmod 600 "$dir/key.pem"
echo "$dir/cert.pem $dir/key.pem"
