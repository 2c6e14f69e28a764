# What the scripts that drive Wireshark's GUI under Xvfb share
# (scripts/screenshot-wireshark, scripts/check-wireshark-gui): sourced,
# not run. Each function stops the script (set -e) when it fails.

# gui_tools [PROGRAM:PACKAGE ...]: installs with apt what driving the GUI
# needs, and the packages of the PROGRAMs given, when missing.
gui_tools() {
  local need=() tool
  for tool in wireshark:wireshark-qt Xvfb:xvfb xdotool:xdotool "$@"; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# tcpshut_bin: $TCPSHUT_BIN, or a release build of the source tree (made
# before any HOME is changed: rustup lives in the real HOME).
tcpshut_bin() {
  if [ -n "${TCPSHUT_BIN:-}" ]; then
    echo "$TCPSHUT_BIN"
  else
    cargo build --release -q -p tcpshut
    echo "$PWD/target/release/tcpshut"
  fi
}

# gui_home BIN HOME WIDTH HEIGHT [native]: the plugin and the tcpshut
# profile installed by `BIN wireshark install --lua` (with native: plain
# `install`, the native plugin too) into HOME (the Lua plugin then replaced
# by the source tree's lua/tcpshut.lua, or $TCPSHUT_PLUGIN: the binary's
# embedded copy may be older), and a recent_common that sizes the main
# window to the screen (Xvfb has no window manager to maximise it) and
# asks nothing about running as root.
gui_home() {
  local bin=$1 home=$2
  mkdir -p "$home/.config/wireshark"
  local mode=--lua
  [ "${5:-}" != native ] || mode=--native
  HOME=$home XDG_CONFIG_HOME=$home/.config "$bin" wireshark install $mode >/dev/null 2>&1 \
    || { echo "tcpshut wireshark install $mode failed in $home" >&2; return 1; }
  cp "${TCPSHUT_PLUGIN:-lua/tcpshut.lua}" "$home/.local/lib/wireshark/plugins/tcpshut.lua"
  cat >"$home/.config/wireshark/recent_common" <<RECENT
gui.geometry_main_x: 0
gui.geometry_main_y: 0
gui.geometry_main_width: $3
gui.geometry_main_height: $4
gui.geometry_main_maximized: FALSE
privs.warn_if_elevated: FALSE
RECENT
}

# start_xvfb WIDTH HEIGHT DIR: an Xvfb on a free display; sets DISPLAY and
# XVFB_PID (the caller kills it).
start_xvfb() {
  Xvfb -displayfd 3 -screen 0 "$1x$2x24" -nolisten tcp 3>"$3/display" >/dev/null 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 50); do [ -s "$3/display" ] && break; sleep 0.2; done
  [ -s "$3/display" ] || { echo "Xvfb gave no display" >&2; return 1; }
  export DISPLAY=:$(cat "$3/display")
}

# wait_window NAME SECONDS: the id of a window whose name matches NAME.
wait_window() {
  local id
  for _ in $(seq $(($2 * 2))); do
    id=$(xdotool search --name "$1" 2>/dev/null | head -n1) && [ -n "$id" ] && { echo "$id"; return; }
    sleep 0.5
  done
  return 1
}

# open_connections_table VERSION: Statistics > tcpshut connections, by
# position (no window manager, so no keyboard focus for Alt+S, and a Lua
# menu item has no mnemonic) at 1500x760 with the fonts each system has;
# prints the table window's id once it appeared.
open_connections_table() {
  local -A statistics=([4.0]="325 10" [4.4]="307 9" [4.6]="307 9")
  local -A item=([4.0]="450 295" [4.4]="365 273" [4.6]="365 295")
  xdotool mousemove ${statistics[$1]} click 1
  sleep 2
  xdotool mousemove ${item[$1]} click 1
  wait_window 'tcpshut connections' 20
}
