# Shared by the server benchmark scripts: start strata, redis-server and
# memcached on free loopback ports, pinned to a core, and stop exactly the
# processes this script started. Source it; do not run it.

# Installs the peer servers and redis-benchmark from Debian if missing.
ensure_peers() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-benchmark >/dev/null || missing+=(redis-tools)
    command -v memcached >/dev/null || missing+=(memcached)
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "== installing ${missing[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

# A free TCP port on 127.0.0.1 (the OS picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (up to 10 s) until something accepts on 127.0.0.1:$1.
wait_port() {
    local port=$1
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port after 10 s" >&2
    return 1
}

STARTED_PIDS=()
stop_started() {
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}
trap stop_started EXIT

# Resident memory of a process in bytes.
rss_bytes() {
    awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}

# start_strata CORE RESP_PORT MEMCACHE_PORT [extra flags…]: sets LAST_PID.
start_strata() {
    local core=$1 resp=$2 mc=$3
    shift 3
    taskset -c "$core" "$STRATA" server --port "$resp" --memcache-port "$mc" \
        --admin-port "$(free_port)" --threads 1 "$@" >/dev/null 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
    wait_port "$resp"
    wait_port "$mc"
}

# start_redis CORE PORT [extra flags…]: persistence off, as a cache.
start_redis() {
    local core=$1 port=$2
    shift 2
    taskset -c "$core" redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no --logfile /dev/null "$@" &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
    wait_port "$port"
}

# start_memcached CORE PORT MEGABYTES [extra flags…].
start_memcached() {
    local core=$1 port=$2 megabytes=$3
    shift 3
    taskset -c "$core" memcached -l 127.0.0.1 -p "$port" -U 0 -m "$megabytes" \
        -u root "$@" &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
    wait_port "$port"
}

machine_line() {
    echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(redis-server --version | cut -d' ' -f1-3); memcached $(memcached -V | cut -d' ' -f2)"
}
