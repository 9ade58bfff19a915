#!/bin/bash
# Start real login servers on 127.0.0.1 for the survey's interop tests and the peer benchmark.
#
#   start-peers.sh DIR     DIR: an empty temp dir made by the caller; all state lives inside it
#   stop-peers.sh DIR      stops everything started here
#   FLEET=SPEC start-peers.sh DIR   only a fleet of BusyBox ash devices on loopback addresses, for
#                          bench/survey/run --fleet ash (SPEC's format is at "FLEET=SPEC" below)
#
# Prints one line per service, "NAME PORT", then exits 0 once every service accepts TCP
# connections (non-zero and a message on stderr if one fails to come up; whatever did
# start is stopped again). Everything binds 127.0.0.1 only, on free ports in 20000-29999.
# DIR/accounts.tsv lists "service<TAB>user<TAB>password" for every account.
#
# Services:
#   telnet_weak       busybox telnetd + the real busybox `login`; admin/admin (in the Mirai
#                     dictionary), weakuser/admin, stronguser/<strong>
#   telnet_strong     same, only admin/<strong> and stronguser/<strong>
#   ssh_weak          dropbear, password auth; admin/admin, stronguser/<strong>
#   ssh_strong        dropbear; admin/<strong>, stronguser/<strong>
#   http_basic_weak   lighttpd, Basic auth on "/", realm botscope-lab; admin/admin
#   http_digest_weak  lighttpd, Digest (MD5) auth on "/", realm botscope-lab; admin/1234
#   http_basic_strong lighttpd, Basic auth on "/"; admin/<strong>
#   telnet_ash        busybox telnetd + busybox login, login shell BusyBox ash with line
#                     editing (`busybox sh -i`, as on most cameras and routers); root/xc3511
#                     (the Mirai pair; this "root" has uid 64100, no privilege), stronguser/<strong>
#   telnet_ash_strong same, only root/<strong> and stronguser/<strong>
#   ssh_ash           dropbear, login shell BusyBox ash; root/xc3511 (uid 64100), stronguser/<strong>
#   telnet_cli        busybox telnetd + login, login shell a vendor-style CLI (banner, prompt
#                     `RT-AC68U>`, "% Unknown command" to anything but help and exit): admin/admin
#   telnet_tty        busybox telnetd + login, login shell that prints a coloured MOTD, asks
#                     the terminal for its cursor position (ESC[6n) and attributes (ESC[c),
#                     hangs up unless both are answered, then runs BusyBox ash with a coloured
#                     prompt: admin/1234
#   https_camera      lighttpd over TLS, a certificate signed by a camera maker's CA, Basic
#                     auth (realm "EX2041 Network Camera"), a session cookie; admin/<strong>
#   ftp_vsftpd        vsftpd; the survey reads its greeting only
#   rtsp_gstreamer    the GStreamer RTSP server (scripts/peers/rtsp-server.py)
#   (<strong> = Xq7#pL2v!9mR; the login shells are scripts/peers/shells/*)
#
# Server-side attempt counts: telnet DIR/NAME/auth.log ("invalid password for 'USER'", one line
# per failed login; successes of non-root users are not logged), ssh DIR/NAME/log (dropbear:
# "Bad password attempt for" / "Password auth succeeded for"), http DIR/NAME/access.log
# (one line per request, status 401 or 200).
#
# The login shells of the ash, cli and tty services add "login accepted for 'USER'" to
# DIR/NAME/auth.log before they run, so tests can count the logins the server accepted.
#
# Accounts without touching the system: busybox login and dropbear both read the fixed
# paths /etc/passwd and /etc/shadow (there is no option for another file). Each telnet and
# ssh server therefore runs in its own private mount namespace (`unshare --mount`, root
# only) in which DIR/NAME/{passwd,shadow,group} are bind-mounted over /etc/{passwd,shadow,
# group}. The host's files are never modified and no system users are created; the bind
# mounts vanish with the namespace when the server exits. Test accounts have uids 64100+
# (no host user owns files with them), shell /bin/sh, home "/"; root has a random password.
# The real busybox login is used (not a script) so tests meet real behaviour, including its
# fixed 3 s pause after each wrong password and at most 3 tries per connection.
#
# Needs: root, util-linux (unshare, setsid, flock), iproute2 (ss), busybox-static, dropbear-bin,
# lighttpd, lighttpd-mod-openssl, openssl, vsftpd, python3-gi, gir1.2-gst-rtsp-server-1.0,
# gstreamer1.0-plugins-base.
set -eu

STRONG='Xq7#pL2v!9mR'

die() { echo "start-peers: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: start-peers.sh DIR"
DIR=$(cd "$1" && pwd) || die "no such directory: $1"
# The login shells run as the test accounts (uids 64100+), which must reach DIR/bin: a mktemp
# directory is 0700.
chmod go+x "$DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (mount namespaces for the login accounts)"
for b in busybox dropbear dropbearkey lighttpd unshare setsid flock ss openssl vsftpd; do
    command -v "$b" >/dev/null || die "missing $b (apt-get install busybox-static dropbear-bin lighttpd lighttpd-mod-openssl util-linux iproute2 openssl vsftpd)"
done
BUSYBOX=$(command -v busybox)
LIGHTTPD=$(command -v lighttpd)
HERE=$(cd "$(dirname "$0")" && pwd)

# If anything below fails, stop what was already started.
trap 'rc=$?; [ $rc -eq 0 ] || "$HERE/stop-peers.sh" "$DIR" >/dev/null 2>&1 || true' EXIT

# Several test processes may start peers at once: serialise port picking up to "listening" with
# a lock (fd 9, closed in every server so the lock is not inherited).
exec 9>"${TMPDIR:-/tmp}/botscope-start-peers.lock"
flock -w 60 9 || die "could not take ${TMPDIR:-/tmp}/botscope-start-peers.lock"

USED=" "
PORT=
# pick_port: sets PORT to a free port (not a subshell, so USED is kept)
pick_port() {
    local p n=0
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 10000))
        n=$((n + 1))
        [ $n -lt 1000 ] || die "no free port found in 20000-29999"
        case "$USED" in *" $p "*) continue ;; esac
        # any socket (listening or not) with this local port means "taken"
        [ -z "$(ss -Htan "sport = :$p")" ] || continue
        USED="$USED$p "
        PORT=$p
        return
    done
}

: >"$DIR/accounts.tsv"
SERVICES=""   # "name port" pairs, in start order

# account files for one service: write_accounts NAME user:password ...
# LOGIN_SHELL (default /bin/sh) is every test account's shell. A pair for "root" replaces the
# real root entry with an unprivileged one (uid 64100+), so the Mirai pair can be tested
# without handing out a real root shell.
write_accounts() {
    local name=$1 uid=64100 u p shell=${LOGIN_SHELL:-/bin/sh}
    shift
    local d="$DIR/$name"
    mkdir -p "$d"
    : >"$d/passwd"
    : >"$d/shadow"
    case " $* " in
    *" root:"*) ;;
    *)
        echo "root:x:0:0:root:/root:/bin/sh" >"$d/passwd"
        # root gets a random password nobody knows: busybox login dies with "bad salt" on a
        # locked ("!") hash instead of answering "Login incorrect"
        echo "root:$("$BUSYBOX" mkpasswd -m sha512 "$(head -c 18 /dev/urandom | base64)"):19000:0:99999:7:::" >"$d/shadow"
        ;;
    esac
    { echo "root:x:0:"; echo "lab:x:64100:"; } >"$d/group"
    printf '/bin/sh\n/bin/bash\n%s\n' "$shell" >"$d/shells"
    for pair in "$@"; do
        u=${pair%%:*}
        p=${pair#*:}
        echo "$u:x:$uid:64100:botscope lab:/:$shell" >>"$d/passwd"
        echo "$u:$("$BUSYBOX" mkpasswd -m sha512 "$p"):19000:0:99999:7:::" >>"$d/shadow"
        printf '%s\t%s\t%s\n' "$name" "$u" "$p" >>"$DIR/accounts.tsv"
        uid=$((uid + 1))
    done
    chmod 644 "$d/passwd" "$d/group"
    chmod 600 "$d/shadow"
}

# run_with_accounts NAME TELNET CMD...: start CMD in the background in its own session, in
# private mount + UTS namespaces with the service's account files over /etc; the pid (which
# is also the process group id) goes to DIR/NAME/pid. Hostname: botscope-lab.
# TELNET=1 also gives the namespace a private /dev (tmpfs with the host's null, zero, random,
# urandom, tty and pts bound in, ptmx -> pts/ptmx) so a busybox syslogd can own /dev/log there and write
# busybox login's messages ("invalid password for 'USER'") to DIR/NAME/auth.log: one line per
# failed attempt, the server-side count of attempts. The host has no /dev/log to disturb.
run_with_accounts() {
    local name=$1 telnet=$2
    shift 2
    local d="$DIR/$name"
    : >"$d/motd"
    : >"$d/auth.log"
    mkdir -p "$d/hostdev"
    setsid unshare --mount --uts --propagation private sh -c '
        d=$1; telnet=$2; bb=$3; shift 3
        set -e
        "$bb" hostname botscope-lab
        mount --bind "$d/passwd" /etc/passwd
        mount --bind "$d/shadow" /etc/shadow
        mount --bind "$d/group" /etc/group
        if [ -e /etc/motd ]; then mount --bind "$d/motd" /etc/motd; fi
        # dropbear refuses a login whose shell is not in /etc/shells
        if [ -e /etc/shells ]; then mount --bind "$d/shells" /etc/shells; fi
        if [ "$telnet" = 1 ]; then
            mount --rbind /dev "$d/hostdev"
            mount -t tmpfs -o mode=755,size=64k botscope-lab-dev /dev
            for n in null zero full random urandom tty; do
                : >"/dev/$n"
                mount --bind "$d/hostdev/$n" "/dev/$n"
            done
            mkdir /dev/pts
            mount --rbind "$d/hostdev/pts" /dev/pts
            ln -s pts/ptmx /dev/ptmx    # a bound ptmx node cannot find its devpts; root may open pts/ptmx
            ln -s /proc/self/fd /dev/fd
            "$bb" syslogd -n -S -O "$d/auth.log" &
            i=0
            while [ ! -S /dev/log ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
        fi
        exec "$@"' sh "$d" "$telnet" "$BUSYBOX" "$@" </dev/null >>"$d/log" 2>&1 9>&- &
    echo $! >"$d/pid"
}

# ---- telnet: busybox telnetd -> busybox login -------------------------------------------
mkdir -p "$DIR/bin"
ln -sf "$BUSYBOX" "$DIR/bin/login"   # busybox picks the applet from argv[0]: "login"

start_telnet() {
    local name=$1
    shift
    write_accounts "$name" "$@"
    local port
    pick_port
    port=$PORT
    printf 'botscope lab telnet (%s)\r\n' "$name" >"$DIR/$name/issue"
    run_with_accounts "$name" 1 "$BUSYBOX" telnetd -F -b 127.0.0.1 -p "$port" \
        -l "$DIR/bin/login" -f "$DIR/$name/issue"
    SERVICES="$SERVICES$name $port
"
}

# ---- post-login environments of real devices ----------------------------------------------
for sh in ash-login cli-login tty-login; do
    sed "s|@BUSYBOX@|$BUSYBOX|g" "$HERE/shells/$sh" >"$DIR/bin/$sh"
    chmod 755 "$DIR/bin/$sh"
done

# ---- FLEET=SPEC: only a fleet of BusyBox ash devices (the survey benchmark) ---------------
# SPEC has one device per line, "ADDRESS USER PASSWORD" (a device that accepts that pair) or
# "ADDRESS - -" (one that accepts nothing the benchmark tries). Every device is busybox telnetd +
# busybox login + BusyBox ash on ADDRESS (a loopback address), all on one port; prints
# "fleet PORT" once every device listens.
if [ -n "${FLEET:-}" ]; then
    pick_port
    fleet_port=$PORT
    count=0
    while read -r address user password; do
        [ -n "$address" ] || continue
        case "$address" in 127.*) ;; *) die "fleet address $address is not loopback" ;; esac
        count=$((count + 1))
        name=$(printf 'fleet_%03d' "$count")
        if [ "$user" = "-" ]; then
            set -- "root:$STRONG" "stronguser:$STRONG"
        else
            set -- "$user:$password" "stronguser:$STRONG"
        fi
        LOGIN_SHELL="$DIR/bin/ash-login" write_accounts "$name" "$@"
        printf '%s\n' "$address" >"$DIR/$name/address"
        printf 'BusyBox v1.35.0 built-in shell (ash)\r\n' >"$DIR/$name/issue"
        run_with_accounts "$name" 1 "$BUSYBOX" telnetd -F -b "$address" -p "$fleet_port" \
            -l "$DIR/bin/login" -f "$DIR/$name/issue"
    done <"$FLEET"
    deadline=$((SECONDS + 30))
    until [ "$(ss -Htln "sport = :$fleet_port" | wc -l)" -ge "$count" ]; do
        [ $SECONDS -lt $deadline ] || die "fleet: not every device listens on port $fleet_port after 30 s"
        sleep 0.1
    done
    echo "fleet $fleet_port"
    exit 0
fi

start_telnet telnet_weak "admin:admin" "weakuser:admin" "stronguser:$STRONG"
start_telnet telnet_strong "admin:$STRONG" "stronguser:$STRONG"

LOGIN_SHELL="$DIR/bin/ash-login" start_telnet telnet_ash "root:xc3511" "stronguser:$STRONG"
LOGIN_SHELL="$DIR/bin/ash-login" start_telnet telnet_ash_strong "root:$STRONG" "stronguser:$STRONG"
LOGIN_SHELL="$DIR/bin/cli-login" start_telnet telnet_cli "admin:admin" "stronguser:$STRONG"
LOGIN_SHELL="$DIR/bin/tty-login" start_telnet telnet_tty "admin:1234" "stronguser:$STRONG"

# ---- ssh: dropbear ------------------------------------------------------------------------
# Host keys of the three kinds old and new clients expect. dropbear reads the accounts
# through glibc (getpwnam/getspnam + crypt), so the same bind-mount trick applies.
start_ssh() {
    local name=$1
    shift
    write_accounts "$name" "$@"
    local d="$DIR/$name" port
    for t in rsa ecdsa ed25519; do
        dropbearkey -t "$t" -f "$d/host_$t" >/dev/null 2>&1 || die "dropbearkey -t $t failed"
    done
    pick_port
    port=$PORT
    # -F foreground, -E log to stderr, -s not given: password auth on; -j/-k: no forwarding
    run_with_accounts "$name" 0 dropbear -F -E -j -k -p "127.0.0.1:$port" -P "$d/dropbear.pid" \
        -r "$d/host_rsa" -r "$d/host_ecdsa" -r "$d/host_ed25519"
    SERVICES="$SERVICES$name $port
"
}

start_ssh ssh_weak "admin:admin" "stronguser:$STRONG"
start_ssh ssh_strong "admin:$STRONG" "stronguser:$STRONG"
LOGIN_SHELL="$DIR/bin/ash-login" start_ssh ssh_ash "root:xc3511" "stronguser:$STRONG"

# ---- http: lighttpd with mod_auth + plain backend -------------------------------------
start_http() {
    local name=$1 method=$2 user=$3 pass=$4
    local d="$DIR/$name" port
    mkdir -p "$d/www"
    pick_port
    port=$PORT
    printf '%s:%s\n' "$user" "$pass" >"$d/users"
    chmod 600 "$d/users"
    printf '%s\t%s\t%s\n' "$name" "$user" "$pass" >>"$DIR/accounts.tsv"
    cat >"$d/www/index.html" <<EOF
<!DOCTYPE html>
<html><head><title>botscope lab device ($name)</title></head>
<body><h1>Device administration</h1><p>Logged in.</p></body></html>
EOF
    cat >"$d/lighttpd.conf" <<EOF
server.modules = ("mod_auth", "mod_authn_file", "mod_accesslog")
accesslog.filename = "$d/access.log"
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$d/www"
server.errorlog = "$d/error.log"
server.pid-file = "$d/lighttpd.pid"
server.tag = "lighttpd"
index-file.names = ("index.html")
mimetype.assign = (".html" => "text/html; charset=utf-8")
auth.backend = "plain"
auth.backend.plain.userfile = "$d/users"
auth.require = ("/" => ("method" => "$method", "realm" => "botscope-lab", "require" => "valid-user"))
EOF
    "$LIGHTTPD" -tt -f "$d/lighttpd.conf" >>"$d/log" 2>&1 || die "$name: bad lighttpd config (see $d/log)"
    setsid "$LIGHTTPD" -D -f "$d/lighttpd.conf" </dev/null >>"$d/log" 2>&1 9>&- &
    echo $! >"$d/pid"
    SERVICES="$SERVICES$name $port
"
}

start_http http_basic_weak basic admin admin
start_http http_digest_weak digest admin 1234
start_http http_basic_strong basic admin "$STRONG"

# ---- services the survey only identifies ------------------------------------------------
# https_camera: lighttpd over TLS (mod_openssl) with a certificate a camera maker's CA signed
# (issuer and subject differ, the subject's organisation has an escaped comma), Basic auth
# with a camera-style realm, and a session cookie on every reply.
start_https_camera() {
    local name=https_camera d="$DIR/https_camera" port
    mkdir -p "$d/www"
    pick_port
    port=$PORT
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$d/ca.key" -out "$d/ca.pem" \
        -subj "/C=JP/O=Example Camera Works/CN=Example Camera Works Device CA" >>"$d/log" 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout "$d/device.key" -out "$d/device.csr" \
        -subj "/C=JP/ST=Tokyo/O=Example Camera Works, Ltd./OU=Network Camera/CN=IPC-EX2041" >>"$d/log" 2>&1
    openssl x509 -req -in "$d/device.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 30 -out "$d/device.pem" >>"$d/log" 2>&1
    cat "$d/device.pem" "$d/device.key" >"$d/server.pem"
    printf 'admin:%s\n' "$STRONG" >"$d/users"
    printf '%s\t%s\t%s\n' "$name" admin "$STRONG" >>"$DIR/accounts.tsv"
    printf '<html><head><title>Network Camera</title></head><body></body></html>\n' >"$d/www/index.html"
    cat >"$d/lighttpd.conf" <<CONF
server.modules = ("mod_openssl", "mod_setenv", "mod_auth", "mod_authn_file")
server.bind = "127.0.0.1"
server.port = $port
ssl.engine = "enable"
ssl.pemfile = "$d/server.pem"
server.document-root = "$d/www"
server.errorlog = "$d/error.log"
server.pid-file = "$d/lighttpd.pid"
server.tag = "lighttpd"
index-file.names = ("index.html")
setenv.add-response-header = ("Set-Cookie" => "EXCAMSESSID=0d1e2f; path=/; HttpOnly")
auth.backend = "plain"
auth.backend.plain.userfile = "$d/users"
auth.require = ("/" => ("method" => "basic", "realm" => "EX2041 Network Camera", "require" => "valid-user"))
CONF
    "$LIGHTTPD" -tt -f "$d/lighttpd.conf" >>"$d/log" 2>&1 || die "$name: bad lighttpd config (see $d/log)"
    setsid "$LIGHTTPD" -D -f "$d/lighttpd.conf" </dev/null >>"$d/log" 2>&1 9>&- &
    echo $! >"$d/pid"
    SERVICES="$SERVICES$name $port
"
}

# ftp_vsftpd: vsftpd, standalone; the survey reads its greeting ("220 (vsFTPd 3.0.3)") only.
start_ftp() {
    local name=ftp_vsftpd d="$DIR/ftp_vsftpd" port
    mkdir -p "$d/empty"
    pick_port
    port=$PORT
    cat >"$d/vsftpd.conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=NO
local_enable=YES
run_as_launching_user=YES
secure_chroot_dir=$d/empty
vsftpd_log_file=$d/vsftpd.log
CONF
    setsid vsftpd "$d/vsftpd.conf" </dev/null >>"$d/log" 2>&1 9>&- &
    echo $! >"$d/pid"
    SERVICES="$SERVICES$name $port
"
}

# rtsp_gstreamer: the GStreamer RTSP server (gst-rtsp-server through Python's gi), a test
# pattern on /live; the survey sends OPTIONS and reads "Server: GStreamer RTSP server".
start_rtsp() {
    local name=rtsp_gstreamer d="$DIR/rtsp_gstreamer" port
    mkdir -p "$d"
    pick_port
    port=$PORT
    setsid /usr/bin/python3 "$HERE/rtsp-server.py" 127.0.0.1 "$port" </dev/null >>"$d/log" 2>&1 9>&- &
    echo $! >"$d/pid"
    SERVICES="$SERVICES$name $port
"
}

start_https_camera
start_ftp
start_rtsp

# ---- wait until every service accepts connections ------------------------------------
deadline=$((SECONDS + 20))
while read -r name port; do
    [ -n "$name" ] || continue
    while :; do
        pid=$(cat "$DIR/$name/pid")
        kill -0 "$pid" 2>/dev/null || die "$name exited early; log: $(tail -n 5 "$DIR/$name/log" 2>/dev/null)"
        [ -z "$(ss -Htln "sport = :$port")" ] || break
        [ $SECONDS -lt $deadline ] || die "$name not listening on 127.0.0.1:$port after 20 s"
        sleep 0.05
    done
done <<EOF
$SERVICES
EOF

printf '%s' "$SERVICES" | tee "$DIR/services"
