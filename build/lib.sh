# shellcheck shell=bash
# build/lib.sh: shell helpers shared by build/demo, build/check and
# build/browser-test.  Sourced, never run.  It installs Debian packages only
# when they are missing, builds the module in the tree, writes private httpd
# ServerRoots under _build/, and stops the servers it started by their PID
# (never by name: other httpds on the machine are none of our business).

WS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WS_TOP

say() { printf '[mod_ws] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# What building needs, what the test suites add (Apache::Test comes with
# mod_perl2; Protocol::WebSocket frames the tests' messages; chromium runs
# the browser test), and what build/fuzz needs (clang and its runtime with
# libFuzzer and the sanitizers).
# shellcheck disable=SC2034  # used by the scripts that source this file
WS_BUILD_PKGS=(gcc libc6-dev make autoconf automake libtool pkg-config
    apache2 apache2-dev libapr1-dev libaprutil1-dev check libjansson-dev libhiredis-dev
    libcurl4-openssl-dev zlib1g-dev
    openssl ca-certificates python3)
# shellcheck disable=SC2034
WS_TEST_PKGS=(libapache2-mod-perl2 libprotocol-websocket-perl
    libio-socket-ssl-perl libwww-perl chromium redis-server)
# shellcheck disable=SC2034
WS_FUZZ_PKGS=(clang libclang-rt-14-dev)
# The dbd handler: apr-util's SQLite driver and the sqlite3 tool (the demo
# and the tests make their databases with it); the tests also run a private
# PostgreSQL server (initdb, pg_ctl) through apr-util's pgsql driver.
WS_BUILD_PKGS+=(libaprutil1-dbd-sqlite3 sqlite3)
# shellcheck disable=SC2034
WS_TEST_PKGS+=(libaprutil1-dbd-pgsql postgresql)

# Echo the Node.js packages to install: none when node and npm are there
# (machine images bring their own Node.js; Debian's would replace it).
ws_node_pkgs() {
    if ! command -v node >/dev/null 2>&1; then
        echo nodejs npm
    elif ! command -v npm >/dev/null 2>&1; then
        echo npm
    fi
}

# ws_install_deps PKG...: install the Debian packages that are missing, with
# a single "apt-get update" and only when something is missing.
ws_install_deps() {
    local pkg missing=() sudo=()
    command -v dpkg-query >/dev/null 2>&1 ||
        die "dpkg-query not found: install $* by hand (this helper knows Debian only)"
    for pkg in "$@"; do
        if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) != ii* ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 ||
            die "missing packages: ${missing[*]} (run as root, or install them)"
        sudo=(sudo)
    fi
    say "installing: ${missing[*]}"
    "${sudo[@]}" apt-get update -q ||
        die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null ||
        die "apt-get install failed: ${missing[*]}"
}

# The apxs of the httpd we build against, the httpd binary and its modules.
ws_apxs() {
    local a
    for a in "${APXS:-}" apxs2 apxs /usr/bin/apxs2 /usr/bin/apxs; do
        [[ -n $a ]] || continue
        if command -v "$a" >/dev/null 2>&1; then
            command -v "$a"
            return 0
        fi
    done
    die "apxs not found (Debian: apache2-dev)"
}

ws_httpd_bin() {
    local apxs sbin target
    apxs=$(ws_apxs)
    sbin=$("$apxs" -q SBINDIR 2>/dev/null) || sbin=/usr/sbin
    target=$("$apxs" -q TARGET 2>/dev/null) || target=apache2
    [[ -x $sbin/$target ]] || die "httpd binary $sbin/$target not found"
    echo "$sbin/$target"
}

ws_modules_dir() {
    local apxs
    apxs=$(ws_apxs)
    "$apxs" -q LIBEXECDIR
}

WS_MODULE_SO=$WS_TOP/mod_ws/.libs/mod_ws.so

# ws_build [--enable-werror] [configure args...]: build mod_ws in the tree.
# autoreconf runs when configure is missing or older than its sources;
# configure runs when the tree is not configured yet, or when arguments are
# given and differ from the ones it was configured with.
ws_build() {
    local apxs want have f regen=0
    local args=()
    apxs=$(ws_apxs)
    args=("--with-apxs=$apxs" "$@")
    (
        cd "$WS_TOP" || exit 1
        if [[ ! -x configure ]]; then
            regen=1
        else
            for f in configure.ac Makefile.am */Makefile.am */*/Makefile.am; do
                if [[ -e $f && $f -nt configure ]]; then
                    regen=1
                fi
            done
        fi
        if ((regen)); then
            say "autoreconf -fi"
            autoreconf -fi || die "autoreconf failed"
        fi
        # config.status --config prints the arguments shell-quoted.
        want=$(printf '%s\n' "${args[@]}")
        have=""
        if [[ -x config.status && config.status -nt configure ]]; then
            have=$(eval "printf '%s\n' $(./config.status --config 2>/dev/null)")
        fi
        # Without arguments of its own, any existing configuration will do.
        if [[ ! -f Makefile || -z $have ]] ||
            { (($# > 0)) && [[ $have != "$want" ]]; }; then
            say "./configure ${args[*]}"
            ./configure -q "${args[@]}" || die "configure failed (see config.log)"
        fi
        say "make -j2"
        make -j2 -s || die "make failed"
        [[ -f $WS_MODULE_SO ]] || die "the build made no mod_ws/.libs/mod_ws.so"
    )
}

# ws_alive PID: true while PID runs (a zombie counts as gone).
ws_alive() {
    local stat
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# ws_children PID: the PIDs whose parent is PID.
ws_children() {
    local f stat fields
    for f in /proc/[0-9]*/stat; do
        stat=$(cat "$f" 2>/dev/null) || continue
        read -r -a fields <<<"${stat##*) }"
        if [[ ${fields[1]} == "$1" ]]; then
            f=${f#/proc/}
            echo "${f%/stat}"
        fi
    done
}

# ws_wait_gone TIMEOUT PID...: wait until none of the PIDs runs; false if
# some still does after TIMEOUT seconds.
ws_wait_gone() {
    local timeout=$1 p left
    shift
    local deadline=$((SECONDS + timeout))
    while :; do
        left=0
        for p in "$@"; do
            ws_alive "$p" && left=1
        done
        ((left)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# ws_stop_pid PID [SIGNAL] [TIMEOUT]: signal PID (default TERM), wait up to
# TIMEOUT seconds (default 15) for it and its children; then TERM (when the
# signal was another) and at last KILL whatever is left.  httpd's children
# are remembered before the signal, because they are reparented once the
# main process has gone.
ws_stop_pid() {
    local pid=$1 sig=${2:-TERM} timeout=${3:-15} kids k
    ws_alive "$pid" || return 0
    kids=$(ws_children "$pid")
    kill -s "$sig" "$pid" 2>/dev/null || true
    # shellcheck disable=SC2086  # kids is a list of numbers
    if ws_wait_gone "$timeout" "$pid" $kids; then
        wait "$pid" 2>/dev/null || true
        return 0
    fi
    if [[ $sig != TERM ]]; then
        say "PID $pid did not stop within ${timeout}s after SIG$sig: sending TERM"
        kill -s TERM "$pid" 2>/dev/null || true
        # shellcheck disable=SC2086
        if ws_wait_gone 10 "$pid" $kids; then
            wait "$pid" 2>/dev/null || true
            return 0
        fi
    fi
    say "PID $pid did not stop: killing it and its children"
    for k in "$pid" $kids; do
        ws_alive "$k" && kill -KILL "$k" 2>/dev/null
    done
    # shellcheck disable=SC2086
    ws_wait_gone 5 "$pid" $kids || say "PID $pid is still there"
    wait "$pid" 2>/dev/null || true
    return 0
}

# ws_port_free PORT: true when nothing accepts on 127.0.0.1:PORT.
ws_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ws_wait_port PORT TIMEOUT [PID]: wait until 127.0.0.1:PORT accepts; false
# on timeout or when PID (the server) ends first.
ws_wait_port() {
    local deadline=$((SECONDS + $2))
    while ws_port_free "$1"; do
        if [[ -n ${3:-} ]] && ! ws_alive "$3"; then
            return 1
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# ws_free_port_pair FIRST: echo the first port P >= FIRST (in steps of 100)
# with P and P+363 both free.
ws_free_port_pair() {
    local p=$1
    while ((p < 65000)); do
        if ws_port_free "$p" && ws_port_free $((p + 363)); then
            echo "$p"
            return 0
        fi
        p=$((p + 100))
    done
    die "no free port pair from $1 on"
}

# The user httpd's children run as: www-data when we are root (httpd will
# not serve as root), ourselves otherwise (httpd ignores User then).
ws_run_user() {
    if ((EUID == 0)); then
        if id -u www-data >/dev/null 2>&1; then echo www-data; else echo daemon; fi
    else
        id -un
    fi
}

ws_run_group() {
    if ((EUID == 0)); then
        id -gn "$(ws_run_user)"
    else
        id -gn
    fi
}

# ws_user_can_read USER FILE: can USER (as httpd's children) read FILE?
ws_user_can_read() {
    if ((EUID != 0)) || [[ $1 == root ]]; then
        [[ -r $2 ]]
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$1" -- test -r "$2" 2>/dev/null
    else
        setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups test -r "$2" 2>/dev/null
    fi
}

ws_sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# ws_demo_prepare ROOT PORT: make the demo's private ServerRoot in ROOT
# (conf/, logs/, run/, a self-signed certificate on first use) and write
# ROOT/conf/httpd.conf from conf/demo/httpd.conf.in.  Prints nothing; sets
# WS_DEMO_CONF and WS_DEMO_PIDFILE.
ws_demo_prepare() {
    local root=$1 port=$2 tls_port=$(($2 + 363)) user group htdocs src
    local tmpl=$WS_TOP/conf/demo/httpd.conf.in
    [[ -f $tmpl ]] || die "$tmpl is missing"
    mkdir -p "$root/conf" "$root/logs" "$root/run"
    root=$(cd "$root" && pwd)
    user=$(ws_run_user)
    group=$(ws_run_group)

    if [[ ! -s $root/conf/server.key || ! -s $root/conf/server.crt ]]; then
        say "making a self-signed certificate for localhost in ${root#"$WS_TOP"/}/conf"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
            -subj /CN=localhost \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -addext "basicConstraints=critical,CA:FALSE" \
            -addext "extendedKeyUsage=serverAuth" \
            -keyout "$root/conf/server.key" -out "$root/conf/server.crt" \
            2>/dev/null || die "openssl could not make a certificate"
        chmod 600 "$root/conf/server.key"
    fi

    # The pages are served by httpd's children, which run as $user: copy
    # them next to the config, or, when $user cannot reach the tree at all
    # (a clone under /root, say), to a directory of their own.
    src=$WS_TOP/conf/demo/htdocs
    htdocs=$root/htdocs
    rm -rf "$htdocs"
    mkdir -p "$htdocs"
    cp -R "$src/." "$htdocs/"
    chmod -R a+rX "$htdocs"
    if ! ws_user_can_read "$user" "$htdocs/index.html"; then
        htdocs=/var/tmp/mod_ws-demo-$port
        say "$user cannot read the tree: serving the pages from $htdocs"
        rm -rf "$htdocs"
        mkdir -p "$htdocs"
        cp -R "$src/." "$htdocs/"
        chmod -R a+rX "$htdocs"
    fi
    # Where later handlers may keep sockets or files that the children use.
    if ((EUID == 0)); then
        chown "$user:$group" "$root/run"
    fi

    ws_demo_make_db "$root/run" "$user" "$group"

    sed -e "s|@SERVER_ROOT@|$(ws_sed_escape "$root")|g" \
        -e "s|@PORT@|$port|g" \
        -e "s|@TLS_PORT@|$tls_port|g" \
        -e "s|@MODULES_DIR@|$(ws_sed_escape "$(ws_modules_dir)")|g" \
        -e "s|@WS_MODULE@|$(ws_sed_escape "$WS_MODULE_SO")|g" \
        -e "s|@HTDOCS@|$(ws_sed_escape "$htdocs")|g" \
        -e "s|@USER@|$(ws_sed_escape "$user")|g" \
        -e "s|@GROUP@|$(ws_sed_escape "$group")|g" \
        "$tmpl" >"$root/conf/httpd.conf.new"
    mv "$root/conf/httpd.conf.new" "$root/conf/httpd.conf"
    WS_DEMO_CONF=$root/conf/httpd.conf
    WS_DEMO_PIDFILE=$root/run/httpd.pid
    export WS_DEMO_CONF WS_DEMO_PIDFILE
}

# ws_demo_make_db DIR USER GROUP: the demo's SQLite database, DIR/demo.sqlite,
# made afresh from conf/demo/demo-db.sql, for the dbd panel of the page.
ws_demo_make_db() {
    local db=$1/demo.sqlite
    command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 is missing (Debian: sqlite3)"
    rm -f "$db" "$db-journal"
    sqlite3 "$db" ".read $WS_TOP/conf/demo/demo-db.sql" ||
        die "sqlite3 could not make $db"
    if ((EUID == 0)); then
        chown "$2:$3" "$db"
    fi
    ws_user_can_read "$2" "$db" ||
        say "warning: $2 cannot read $db: the page's database panel will show errors"
}

# ws_pidfile_pid PIDFILE: echo the live PID in PIDFILE, or fail.
ws_pidfile_pid() {
    local pid
    [[ -s $1 ]] || return 1
    read -r pid <"$1" || return 1
    ws_alive "$pid" || return 1
    echo "$pid"
}

# ws_httpd_start_bg CONF PIDFILE PORT: start httpd detached (it forks into
# the background itself), wait until it listens, echo its main PID.
ws_httpd_start_bg() {
    local conf=$1 pidfile=$2 port=$3 httpd pid deadline
    httpd=$(ws_httpd_bin)
    rm -f "$pidfile"
    "$httpd" -f "$conf" -k start </dev/null || return 1
    deadline=$((SECONDS + 15))
    until pid=$(ws_pidfile_pid "$pidfile"); do
        ((SECONDS < deadline)) || { say "httpd wrote no PID file"; return 1; }
        sleep 0.1
    done
    ws_wait_port "$port" 15 "$pid" || { say "httpd is not listening on $port"; ws_stop_pid "$pid"; return 1; }
    echo "$pid"
}

# ws_apache_pids_under DIR: PIDs of httpd processes whose command line names
# DIR (servers our scripts and tests started from this tree).
ws_apache_pids_under() {
    local httpd f pid exe
    httpd=$(ws_httpd_bin)
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
        [[ $exe == "$httpd" ]] || continue
        if tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -- "$1"; then
            echo "$pid"
        fi
    done
}
