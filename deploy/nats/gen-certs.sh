#!/bin/sh
# gen-certs.sh DIR [SERVER_NAME...]: make a private CA, a server certificate
# for the names given (default: localhost and 127.0.0.1) and a client
# certificate for mutual TLS, as PEM files in DIR:
#   ca.pem ca-key.pem server.pem server-key.pem client.pem client-key.pem
# Needs openssl. For production use your own CA or cert-manager.
set -eu
dir=${1:?usage: gen-certs.sh DIR [SERVER_NAME...]}
shift
[ $# -gt 0 ] || set -- localhost 127.0.0.1
mkdir -p "$dir"
cd "$dir"
umask 077

san=""
for n in "$@"; do
	case $n in
	*[!0-9.]*) san="$san,DNS:$n" ;;
	*) san="$san,IP:$n" ;;
	esac
done
san=${san#,}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
	-subj "/CN=jetworker NATS CA" -keyout ca-key.pem -out ca.pem \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null

cert() { # cert NAME CN EXT
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$2" -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
	printf '%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
		-days 825 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
cert server "$1" "subjectAltName=$san
extendedKeyUsage=serverAuth"
cert client jetworker "extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 0644 ca.pem server.pem client.pem
echo "wrote CA, server ($san) and client certificates to $dir"
