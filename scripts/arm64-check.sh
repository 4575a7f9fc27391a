#!/usr/bin/env bash
# Check gorescue's live captures on arm64 (aarch64), on an x86_64 Debian machine, as root:
# cross-build gorescue and the Go test programs for arm64, then boot Debian's arm64 kernel
# under qemu-system-aarch64 (software emulation) with an initramfs whose /init runs, for
# Debian's Go 1.19 and the newest Go toolchain:
#   - the ptrace route (stderr to /dev/null; the program ends with the dump, exit status 2);
#   - --via snapshot twice and --via pprof twice on a running service (serveprog, stripped):
#     every parked goroutine in each dump, the service left running, untraced, childless,
#     its stderr empty.
# qemu-user cannot run ptrace, hence a whole virtual machine. Not part of scripts/test.sh:
# it adds the arm64 architecture to dpkg, installs a cross compiler and qemu, and downloads
# the arm64 kernel and busybox packages. Takes a few minutes.
#   bash scripts/arm64-check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"
[ "$(id -u)" = 0 ] || { echo "error: run as root (dpkg, apt-get)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "error: this script cross-builds from x86_64" >&2; exit 1; }

W="$ROOT/target/arm64-check"
mkdir -p "$W"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get -q update </dev/null >/dev/null
fi
need_debs qemu-system-arm cpio gcc-aarch64-linux-gnu libc6-dev-arm64-cross libsystemd-dev:arm64
ensure_rust
rustup target add aarch64-unknown-linux-gnu >/dev/null
bash scripts/install-go.sh </dev/null >/dev/null

echo "==> cross-build gorescue for aarch64"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc PKG_CONFIG_ALLOW_CROSS=1 \
  PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
  cargo build --release --quiet --target aarch64-unknown-linux-gnu

echo "==> arm64 kernel and busybox (Debian packages, unpacked here)"
(
  cd "$W"
  kpkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/{print $2}' | head -1)
  rm -rf pkgs && mkdir pkgs && cd pkgs
  apt-get download "$kpkg" busybox-static:arm64 </dev/null >/dev/null 2>&1
  for d in *.deb; do dpkg-deb -x "$d" ../unpacked; done
)
KERNEL=$(ls "$W"/unpacked/boot/vmlinuz-* | head -1)

echo "==> initramfs"
R="$W/root"
rm -rf "$R"
mkdir -p "$R"/{bin,proc,sys,dev,tmp,lib,usr/lib/aarch64-linux-gnu}
cp "$W/unpacked/bin/busybox" "$R/bin/"
cp target/aarch64-unknown-linux-gnu/release/gorescue "$R/gorescue"
aarch64-linux-gnu-strip "$R/gorescue"
cp tests/fixtures/arm64/go1.27.3/sigquit-wedge.txt "$R/fixture.txt"
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOARCH=arm64 GOCACHE="$ROOT/target/gocache"
bash scripts/go-toolchains.sh | while read -r v go; do
  case "$v" in 1.19*) tag=old ;; *) tag=new ;; esac
  echo "$v" >"$R/go-$tag.version"
  (cd tests/goprog && "$go" build -o "$R/dumpprog-$tag" . &&
    "$go" build -ldflags='-s -w' -o "$R/serveprog-$tag" ./serveprog)
done
# The shared libraries gorescue needs, and theirs.
need() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
todo=("$R/gorescue"); seen=" "
while [ ${#todo[@]} -gt 0 ]; do
  f=${todo[0]}; todo=("${todo[@]:1}")
  for l in $(need "$f"); do
    case "$seen" in *" $l "*) continue ;; esac
    seen="$seen$l "
    cp -L "/usr/lib/aarch64-linux-gnu/$l" "$R/usr/lib/aarch64-linux-gnu/" 2>/dev/null ||
      cp -L "/usr/aarch64-linux-gnu/lib/$l" "$R/usr/lib/aarch64-linux-gnu/"
    todo+=("$R/usr/lib/aarch64-linux-gnu/$l")
  done
done
cp -L /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$R/lib/"
ln -s ../usr/lib/aarch64-linux-gnu "$R/lib/aarch64-linux-gnu"

cat >"$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
ifconfig lo 127.0.0.1 up
mkdir -p /tmp/save
echo "VMCHECK kernel $(uname -m) $(uname -r), $(/gorescue --version)"
ok() { echo "VMCHECK PASS $*"; }
bad() { echo "VMCHECK FAIL $*"; }
waitready() { i=0; while ! grep -q ready "$1" 2>/dev/null; do sleep 0.2; i=$((i+1)); [ $i -gt 600 ] && return 1; done; }
/gorescue annotate /fixture.txt --format json >/tmp/fx.json && ok "annotate the arm64 fixture" || bad "annotate"
for tag in old new; do
  v=go$(cat /go-$tag.version)
  /dumpprog-$tag -mode wedge >/tmp/ready-$tag 2>/dev/null &
  pid=$!; waitready /tmp/ready-$tag
  if /gorescue pid $pid --yes --format raw --save-dir /tmp/save -o /tmp/p.txt 2>/tmp/p.err; then
    ok "$v ptrace: $(grep -c '^goroutine [0-9]* .*:$' /tmp/p.txt) goroutines, $(grep -o '^capture: *[a-z]*' /tmp/p.err | tr -s ' ')"
  else bad "$v ptrace: $(tail -2 /tmp/p.err)"; fi
  wait $pid; st=$?; [ $st = 2 ] && ok "$v ptrace: the program exited with status 2" || bad "$v exit status $st"

  /serveprog-$tag -n 1000 -heap 64 -pprof -http /tmp/addr-$tag >/tmp/sready-$tag 2>/tmp/serr-$tag &
  pid=$!; waitready /tmp/sready-$tag
  for route in snapshot snapshot pprof pprof; do
    if /gorescue pid $pid --via $route --yes --format raw --save-dir /tmp/save -o /tmp/k.txt 2>/tmp/k.err; then
      n=$(grep -c 'main.park' /tmp/k.txt)
      [ "$n" = 1000 ] && ok "$v $route: 1000 goroutines in main.park, $(grep -o 'paused [0-9.]* ms\|at most [0-9.]* ms' /tmp/k.err)" ||
        bad "$v $route: $n goroutines in main.park"
    else bad "$v $route: $(tail -3 /tmp/k.err)"; fi
    st=$(awk '{print $3}' /proc/$pid/stat); tr=$(awk '/TracerPid/{print $2}' /proc/$pid/status)
    kids=$(cat /proc/$pid/task/*/children | tr -d ' \n')
    if [ "$st" != T ] && [ "$st" != Z ] && [ "$tr" = 0 ] && [ -z "$kids" ]; then
      ok "$v $route: the service runs on ($st), untraced, no child"
    else bad "$v $route: state $st, tracer $tr, children '$kids'"; fi
  done
  [ -s /tmp/serr-$tag ] && bad "$v serveprog's stderr got: $(head -c 200 /tmp/serr-$tag)" || ok "$v serveprog's stderr is empty"
  kill $pid
done
echo "VMCHECK DONE"
poweroff -f
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$W/initrd.gz")

echo "==> boot $(basename "$KERNEL") under qemu-system-aarch64"
timeout 1800 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1536 -nographic -no-reboot \
  -kernel "$KERNEL" -initrd "$W/initrd.gz" -append "console=ttyAMA0 rdinit=/init quiet panic=-1" \
  </dev/null >"$W/vm.log" 2>&1 || true
grep '^VMCHECK' "$W/vm.log" | tr -d '\r'
if grep -q 'VMCHECK FAIL' "$W/vm.log" || ! grep -q 'VMCHECK DONE' "$W/vm.log"; then
  echo "arm64 check FAILED (console log: $W/vm.log)" >&2
  exit 1
fi
echo "arm64 check passed"
