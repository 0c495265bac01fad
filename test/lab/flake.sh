#!/usr/bin/env bash
# flake.sh — write the lab fleet's flake to $LAB_DIR/flake/flake.nix.
#
#   flake.sh [--generation G] [--kernel-version V] [--board-kernel "HOST=VERSION ..."]
#            [--packages "NAME-VERSION[:KIB] ..."]
#            [--fail-activation "opi02 opi03"] [--broken-unit HOSTS]
#            [--unit-dies HOSTS] [--restart-sshd HOSTS] [--boot-falls-back HOSTS]
#
# The flake has no inputs (nothing to fetch: the lab is offline) and exposes,
# for every host in LAB_HOSTS and for calypso and hawk,
# nixosConfigurations.<host>.config.system.build.toplevel and
# .config.nixpkgs.hostPlatform.system. The opis' derivations are aarch64-linux,
# so hawk and calypso (no aarch64) must delegate them to the opis, exactly like
# the real fleet; calypso's and hawk's are x86_64-linux (their own "kernel"),
# built natively by hawk (or calypso). The opi containers run on this x86_64
# kernel too, so their Nix could build x86_64: only the builders' machines
# lines (aarch64-linux) keep x86_64 work off them. All built with /bin/sh.
# --board-kernel gives the named hosts a kernel of their own version instead
# of the shared one (hosts of one system naming the same version share it),
# e.g. "opi01=6.6.1 opi02=6.7.1": two kernel builds that can run in parallel.
#
# A toplevel holds etc/systemd/system/lab-app.service (a long-running service),
# nixos-version and bin/switch-to-configuration, which acts on the host's systemd the way
# NixOS's does for what a deploy observes (see switchScript below).
# Names carry versions as nixpkgs' do, so `nix store diff-closures` between two
# generations has something to show: the kernel linux-<V> (--kernel-version;
# default 6.1.<generation>), the toplevel nixos-system-<host>-25.05.lab-<generation>,
# and small text packages in its closure (no build): lab-app-1.0 always, plus
# --packages NAME-VERSION[:KIB] (default size 1 KiB), e.g. "lab-tools-2.1:24"
# in one generation and "lab-tools-2.2:24" in the next.
# Host lists (space-separated) for faults:
#   --fail-activation  switch-to-configuration records the attempt, changes nothing, exits 1
#   --broken-unit      lab-app.service fails at once: the unit is failed, the system
#                      "degraded", switch-to-configuration still exits 0
#   --unit-dies        lab-app.service runs ~3 s, then exits 1
#   --restart-sshd     the activation also restarts sshd (as a real switch may)
#   --boot-falls-back  the toplevel does not boot (a file lab-boot-fails in it, as a kernel
#                      that panics): at boot the lab bootloader (rootfs.sh) falls back to the
#                      newest older generation, as systemd-boot's boot counting or GRUB's
#                      fallback entry would; switch/test still activate it live
# Evaluation cost (LAB_EVAL_SECONDS, LAB_EVAL_MIB; both 0 = off): evaluating a
# host's toplevel, which nixpkgs' module system makes cost seconds of CPU and
# hundreds of MiB, costs that here too, in the Nix evaluator itself: sha256
# rounds over a 64 KiB string (sized for this machine: the rounds per second
# are measured once per lab into $LAB_DIR/eval-rate) and LAB_EVAL_MIB distinct
# 1 MiB strings held until the toplevel is known. Each such evaluation prints
# "trace: lab-eval <host> <generation>" on the evaluating nix's stderr (only
# when the cost is on): once per host and evaluator process, as Nix evaluates
# a value once per process.
# Prints the flake reference (path:$LAB_DIR/flake) on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

usage() {
  echo "usage: flake.sh [--generation G] [--kernel-version V] [--board-kernel \"HOST=VERSION ...\"] [--packages \"NAME-VERSION[:KIB] ...\"] [--fail-activation \"opiNN ...\"] [--broken-unit HOSTS] [--unit-dies HOSTS] [--restart-sshd HOSTS] [--boot-falls-back HOSTS]" >&2
  exit 2
}

generation=1
kernel_version=""
board_kernel=""
packages=""
fail_activation=""
broken_unit=""
unit_dies=""
restart_sshd=""
boot_falls_back=""
while (($#)); do
  case "$1" in
    --generation) (($# >= 2)) || usage; generation=$2; shift 2 ;;
    --generation=*) generation=${1#*=}; shift ;;
    --kernel-version) (($# >= 2)) || usage; kernel_version=$2; shift 2 ;;
    --kernel-version=*) kernel_version=${1#*=}; shift ;;
    --board-kernel) (($# >= 2)) || usage; board_kernel=$2; shift 2 ;;
    --board-kernel=*) board_kernel=${1#*=}; shift ;;
    --packages) (($# >= 2)) || usage; packages=$2; shift 2 ;;
    --packages=*) packages=${1#*=}; shift ;;
    --fail-activation) (($# >= 2)) || usage; fail_activation=$2; shift 2 ;;
    --fail-activation=*) fail_activation=${1#*=}; shift ;;
    --broken-unit) (($# >= 2)) || usage; broken_unit=$2; shift 2 ;;
    --broken-unit=*) broken_unit=${1#*=}; shift ;;
    --unit-dies) (($# >= 2)) || usage; unit_dies=$2; shift 2 ;;
    --unit-dies=*) unit_dies=${1#*=}; shift ;;
    --restart-sshd) (($# >= 2)) || usage; restart_sshd=$2; shift 2 ;;
    --restart-sshd=*) restart_sshd=${1#*=}; shift ;;
    --boot-falls-back) (($# >= 2)) || usage; boot_falls_back=$2; shift 2 ;;
    --boot-falls-back=*) boot_falls_back=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "flake.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

lab_check_hosts
lab_check_seconds
# The generation ends up in store path names: keep to Nix's name characters.
[[ "$generation" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
  lab_die "--generation '$generation': use letters, digits and . _ + - only"
# A version Nix splits off the name as nixpkgs' are (DrvName: the name ends at
# the first '-' followed by a non-letter): it starts with a digit.
kernel_version=${kernel_version:-6.1.$generation}
version_re='^[0-9][A-Za-z0-9._+-]*$'
[[ "$kernel_version" =~ $version_re ]] ||
  lab_die "--kernel-version '$kernel_version': start with a digit; letters, digits and . _ + - only"
# Every host with a configuration: the opis (aarch64-linux) and the two
# x86_64-linux coordinators (both deploy targets too; hawk only from a run on
# hawk, in its namespaces: test/lab/hawk-ns.sh).
all_hosts="$LAB_HOSTS calypso hawk"
# --board-kernel: HOST=VERSION words -> a Nix attrset { HOST = "VERSION"; }.
nix_board_kernels="{"
seen_board=" "
for w in $board_kernel; do
  [[ "$w" == *=* ]] || lab_die "--board-kernel: '$w' is not HOST=VERSION"
  h=${w%%=*} v=${w#*=}
  [[ " $all_hosts " == *" $h "* ]] || lab_die "--board-kernel: '$h' is not a lab host ($all_hosts)"
  [[ "$seen_board" != *" $h "* ]] || lab_die "--board-kernel: '$h' is named twice"
  [[ "$v" =~ $version_re ]] || lab_die "--board-kernel: version '$v' of $h: start with a digit; letters, digits and . _ + - only"
  seen_board+="$h "
  nix_board_kernels+=" $h = \"$v\";"
done
nix_board_kernels+=" }"
# --packages: NAME-VERSION[:KIB] words -> Nix attrsets { name = "..."; kib = N; }.
nix_packages="["
for p in lab-app-1.0 $packages; do
  [[ "$p" =~ ^([A-Za-z][A-Za-z0-9_+]*(-[A-Za-z][A-Za-z0-9_+]*)*-[0-9][A-Za-z0-9._+-]*)(:([0-9]+))?$ ]] ||
    lab_die "--packages: '$p' is not NAME-VERSION[:KIB] (a version starting with a digit, a size in whole KiB)"
  nix_packages+=" { name = \"${BASH_REMATCH[1]}\"; kib = ${BASH_REMATCH[4]:-1}; }"
done
nix_packages+=" ]"
for opt in fail_activation broken_unit unit_dies restart_sshd boot_falls_back; do
  for h in ${!opt}; do
    [[ " $all_hosts " == *" $h "* ]] || lab_die "--${opt//_/-}: '$h' is not a lab host (LAB_HOSTS, calypso, hawk: $all_hosts)"
  done
done
[[ -d "$LAB_DIR" ]] || lab_die "$LAB_DIR does not exist (run up.sh first)"

# A per-lab nonce mixed into every derivation: hawk's /nix/store outlives the
# lab, so without it a fresh lab at generation 1 would find generation 1 of the
# previous lab already built and nothing would be built on the opis.
if [[ ! -s "$LAB_DIR/lab-id" ]]; then
  od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$LAB_DIR/lab-id"
fi
lab_id=$(<"$LAB_DIR/lab-id")
[[ "$lab_id" =~ ^[0-9a-f]+$ ]] || lab_die "$LAB_DIR/lab-id is corrupt"

# The evaluation cost's expression (flake.nix below has the same, with the
# lab's values): CPU in sha256 rounds, memory in held 1 MiB strings.
eval_cost_nix='rounds: mib: salt:
        let
          kib = builtins.substring 0 1024 (builtins.concatStringsSep "" (builtins.genList (_: "lab evaluation ${salt} ") 64));
          double = s: n: if n == 0 then s else double (s + s) (n - 1);
          block = double kib 6;
          mibString = double block 4;
          held = builtins.genList (i: "${toString i}${mibString}") mib;
          size = builtins.foldl'"'"' (a: s: a + builtins.stringLength s) 0;
          hashes = builtins.genList (_: builtins.hashString "sha256" block) rounds;
        in builtins.foldl'"'"' (a: h: a + builtins.stringLength h) (size held) hashes + size held'
# eval_rate: sha256 rounds per second of this machine's Nix evaluator (no store:
# dummy://), measured once per lab (the median of three 4000-round runs).
eval_rate() {
  local f=$LAB_DIR/eval-rate t0 t1 i ms=()
  if [[ ! -s "$f" ]]; then
    for i in 1 2 3; do
      t0=$(date +%s%N)
      nix --extra-experimental-features 'nix-command flakes' eval --store dummy:// \
        --expr "($eval_cost_nix) 4000 0 \"calibration-$i\"" >/dev/null || lab_die "calibrating the evaluation cost failed"
      t1=$(date +%s%N)
      ms+=($(((t1 - t0) / 1000000)))
    done
    i=$(printf '%s\n' "${ms[@]}" | sort -n | sed -n 2p)
    echo $((4000 * 1000 / (i > 0 ? i : 1))) >"$f"
  fi
  cat "$f"
}
eval_rounds=0
if ((LAB_EVAL_SECONDS > 0)); then
  eval_rounds=$((LAB_EVAL_SECONDS * $(eval_rate)))
fi
eval_on=false
((LAB_EVAL_SECONDS > 0 || LAB_EVAL_MIB > 0)) && eval_on=true

nix_list() { # words -> [ "a" "b" ]
  local w out="["
  for w in $1; do out+=" \"$w\""; done
  echo "$out ]"
}

flake_dir=$LAB_DIR/flake
mkdir -p "$flake_dir"
tmp=$(mktemp "$flake_dir/.flake.nix.XXXXXX")
# Quoted heredoc: Nix's ${...} and the builders' $out stay literal; the lab
# values are substituted by sed below (they were validated above).
cat >"$tmp" <<'NIX'
# Generated by avalanche-deploy test/lab/flake.sh. Do not edit: re-run flake.sh.
{
  description = "avalanche-deploy lab fleet, generation @GENERATION@";

  outputs = { self }:
    let
      # Systems are written out: builtins.currentSystem is impure.
      # The opis are aarch64-linux; calypso and hawk x86_64-linux.
      x86Hosts = [ "calypso" "hawk" ];
      systemOf = host: if builtins.elem host x86Hosts then "x86_64-linux" else "aarch64-linux";
      generation = "@GENERATION@";
      kernelVersion = "@KERNEL_VERSION@";
      # --board-kernel: { <host> = "<version>"; } for hosts with a kernel of their own.
      boardKernels = @BOARD_KERNELS@;
      # What nixos-version says, and the toplevel's version (as NixOS's system.nixos.label).
      nixosVersion = "25.05.lab-${generation}";
      labDir = "@LAB_DIR@";
      labId = "@LAB_ID@";
      hosts = @HOSTS@ ++ x86Hosts;
      failActivation = @FAIL_ACTIVATION@;
      brokenUnit = @BROKEN_UNIT@;
      unitDies = @UNIT_DIES@;
      restartSshd = @RESTART_SSHD@;
      bootFallsBack = @BOOT_FALLS_BACK@;
      has = list: host: builtins.elem host list;

      # Every lab build records itself in builds.log (in the directory every
      # lab host shares; deliberate impurity, sandbox = false) so tests can
      # count where and how often it was built, and when:
      # "<hostname> <name> <generation> <start> <end>" (epoch seconds with
      # fractions). hawk is this machine's root namespace, whose hostname is the
      # machine's own (up.sh writes it to shared/hawk-uts-name): logged as hawk.
      buildStart = ''
        start=$(/bin/date +%s.%N)
      '';
      buildEnd = ''
        host_name=$(/bin/hostname)
        if [ "$host_name" = "$(/bin/cat "$labDir/shared/hawk-uts-name" 2>/dev/null)" ]; then host_name=hawk; fi
        echo "$host_name $name $generation $start $(/bin/date +%s.%N)" >> "$labDir/shared/builds.log"
      '';

      # The slow "kernel" of a system and version: one derivation per
      # (system, version), shared by every host that has it (the opis' shared
      # kernel is built once, on whichever opi the coordinator delegates to,
      # then served from the cache). The generation is an input, so every
      # generation builds new kernels, whatever their versions say.
      # aarch64: linux-<version> (as before); x86_64: linux-x86_64-<version>.
      mkKernel = system: version: derivation {
        name = if system == "x86_64-linux" then "linux-x86_64-${version}" else "linux-${version}";
        inherit system labDir labId generation;
        builder = "/bin/sh";
        args = [ "-c" ''
          set -e
          ${buildStart}
          /bin/sleep @KERNEL_SECONDS@
          /bin/mkdir -p "$out"
          /bin/hostname > "$out/built-on"
          ${buildEnd}
        '' ];
      };
      kernelOf = host: mkKernel (systemOf host) (boardKernels.${host} or kernelVersion);

      # Packages in every toplevel's closure: text files in the store, written
      # at evaluation (builtins.toFile), so nothing more is built. KIB KiB of
      # filler, so a package added, removed or resized moves the closure size
      # past diff-closures' 8 KiB threshold when asked to.
      kibBlock = builtins.substring 0 1024 (builtins.concatStringsSep "" (builtins.genList (_: "lab package filler ") 64));
      kibOfFiller = kib: builtins.concatStringsSep "" (builtins.genList (_: kibBlock) kib);
      packages = map (p: builtins.toFile p.name "${p.name}\n${kibOfFiller p.kib}") @PACKAGES@;

      # The system's one service. @out@ is the toplevel's own path.
      appUnit = host: ''
        [Unit]
        Description=lab app of ${host} (generation ${generation}, @out@)

        [Service]
        ${if has brokenUnit host then ''
          # lab fault (--broken-unit): fails at once
          ExecStart=/bin/false
        '' else if has unitDies host then ''
          # lab fault (--unit-dies): runs ~3 s, then fails
          ExecStart=/bin/sh -c '/bin/sleep 3; exit 1'
        '' else ''
          ExecStart=/bin/sleep infinity
        ''}
      '';

      # Stand-in for NixOS's switch-to-configuration, run as root (under
      # systemd-run, with an empty environment: absolute paths only).
      #   switch|test   link the toplevel's units into /run/systemd/system,
      #                 daemon-reload, restart lab-app.service, point
      #                 /run/current-system at the toplevel
      #   boot          nothing beyond the profile nixos-rebuild set (no bootloader)
      #   dry-activate  nothing
      # Each goal is recorded in /var/lib/lab/activations.log as
      # "<epoch> <goal> <toplevel>". lab-boot (not a NixOS goal) is what the
      # template's lab-activate-on-boot.service runs at boot for the system
      # profile, as NixOS's stage 2 activates the booted generation and links
      # /run/booted-system to it: not recorded.
      #
      # hawk is this machine seen through its lab namespaces (test/lab/hawk-ns.sh:
      # hostname hawk, a private /run): no systemd there, so its activation only
      # points /run/current-system at the toplevel, and it records its goals in
      # the lab's copy of hawk's /var/lib/lab. On the machine itself (its own
      # hostname) the hostname check refuses it.
      switchScript = host: let onHawk = host == "hawk"; in ''
        #!/bin/sh
        # Lab switch-to-configuration for ${host} (avalanche-deploy test/lab/flake.sh)
        set -e
        goal="$1"
        if [ "$(/bin/hostname)" != "${host}" ]; then
          echo "switch-to-configuration: this is ${host}'s system but this host is $(/bin/hostname)" >&2
          exit 2
        fi
        log_dir=${if onHawk then "${labDir}/hawk/root/var/lib/lab" else "/var/lib/lab"}
        activate() {
          ${if onHawk then "" else ''
          /bin/mkdir -p /run/systemd/system
          /bin/ln -sfn @out@/etc/systemd/system/lab-app.service /run/systemd/system/lab-app.service
          ''}
          /bin/ln -sfn @out@ /run/current-system
          ${if onHawk then "" else "/bin/systemctl daemon-reload"}
        }
        case "$goal" in
          switch|boot|test|dry-activate) ;;
          lab-boot) activate; /bin/ln -sfn @out@ /run/booted-system; /bin/systemctl --no-block restart lab-app.service; exit 0 ;;
          *) echo "usage: switch-to-configuration [switch|boot|test|dry-activate]" >&2; exit 1 ;;
        esac
        /bin/sleep @ACTIVATION_SECONDS@
        /bin/mkdir -p "$log_dir"
        echo "$(/bin/date +%s) $goal @out@" >> "$log_dir/activations.log"
        ${if has failActivation host then ''
          echo "switch-to-configuration: lab fault: activation of ${host} fails" >&2
          exit 1
        '' else ""}
        case "$goal" in
          switch|test)
            activate
            ${if onHawk then "" else "/bin/systemctl restart lab-app.service"}
            ${if has restartSshd host then "/bin/systemctl restart ssh.service" else ""}
            ;;
        esac
        exit 0
      '';

      # Evaluation cost (LAB_EVAL_SECONDS, LAB_EVAL_MIB), standing in for
      # nixpkgs' module system: forced with the toplevel, once per evaluator
      # process and host, and counted by its trace "lab-eval <host> <generation>".
      evalCost = @EVAL_COST_NIX@;
      evaluated = host: value:
        if @EVAL_ON@
        then builtins.trace "lab-eval ${host} ${generation}" (builtins.seq (evalCost @EVAL_ROUNDS@ @EVAL_MIB@ "${host} ${generation}") value)
        else value;

      toplevel = host: evaluated host (derivation {
        name = "nixos-system-${host}-${nixosVersion}";
        system = systemOf host;
        kernel = kernelOf host;
        inherit labDir labId host generation nixosVersion packages;
        switchScript = switchScript host;
        appUnit = appUnit host;
        # lab fault (--boot-falls-back): this system does not boot; the lab bootloader falls back.
        bootFails = if has bootFallsBack host then "1" else "";
        builder = "/bin/sh";
        args = [ "-c" ''
          set -e
          ${buildStart}
          /bin/sleep @HOST_SECONDS@
          /bin/mkdir -p "$out/bin" "$out/etc/systemd/system"
          /bin/mkdir -p "$out/sw"
          /bin/ln -s "$kernel" "$out/kernel"
          for p in $packages; do /bin/ln -s "$p" "$out/sw/''${p#/nix/store/}"; done
          echo "$host" > "$out/host"
          if [ -n "$bootFails" ]; then echo "lab fault (--boot-falls-back): this system does not boot" > "$out/lab-boot-fails"; fi
          # As in every NixOS toplevel (recent nixos-rebuild-ng refuses one without it).
          echo "$nixosVersion" > "$out/nixos-version"
          printf '%s' "$switchScript" | /bin/sed "s|@out@|$out|g" > "$out/bin/switch-to-configuration"
          /bin/chmod 0555 "$out/bin/switch-to-configuration"
          printf '%s' "$appUnit" | /bin/sed "s|@out@|$out|g" > "$out/etc/systemd/system/lab-app.service"
          ${buildEnd}
        '' ];
      });
    in {
      nixosConfigurations = builtins.listToAttrs (map (host: {
        name = host;
        value.config = {
          system.build.toplevel = toplevel host;
          nixpkgs.hostPlatform.system = systemOf host;
        };
      }) hosts);
    };
}
NIX
sed -i \
  -e "s|@GENERATION@|$generation|g" \
  -e "s|@KERNEL_VERSION@|$kernel_version|g" \
  -e "s|@BOARD_KERNELS@|$nix_board_kernels|g" \
  -e "s|@PACKAGES@|$nix_packages|g" \
  -e "s|@LAB_DIR@|$LAB_DIR|g" \
  -e "s|@LAB_ID@|$lab_id|g" \
  -e "s|@HOSTS@|$(nix_list "$LAB_HOSTS")|g" \
  -e "s|@FAIL_ACTIVATION@|$(nix_list "$fail_activation")|g" \
  -e "s|@BROKEN_UNIT@|$(nix_list "$broken_unit")|g" \
  -e "s|@UNIT_DIES@|$(nix_list "$unit_dies")|g" \
  -e "s|@RESTART_SSHD@|$(nix_list "$restart_sshd")|g" \
  -e "s|@BOOT_FALLS_BACK@|$(nix_list "$boot_falls_back")|g" \
  -e "s|@KERNEL_SECONDS@|$LAB_KERNEL_SECONDS|g" \
  -e "s|@HOST_SECONDS@|$LAB_HOST_SECONDS|g" \
  -e "s|@ACTIVATION_SECONDS@|$LAB_ACTIVATION_SECONDS|g" \
  -e "s|@EVAL_ON@|$eval_on|g" \
  -e "s|@EVAL_ROUNDS@|$eval_rounds|g" \
  -e "s|@EVAL_MIB@|$LAB_EVAL_MIB|g" \
  "$tmp"
# The cost expression has | and & in it: inserted by a literal replacement.
EVAL_COST_NIX=$eval_cost_nix perl -0pi -e 's/\@EVAL_COST_NIX\@/$ENV{EVAL_COST_NIX}/g' "$tmp"
chmod 0644 "$tmp"
# A lock file for a flake without inputs, so Nix never has to write one.
printf '%s\n' '{"nodes":{"root":{}},"root":"root","version":7}' >"$flake_dir/flake.lock"
# Rename into place: a concurrently evaluating nix never sees half a file.
mv -f "$tmp" "$flake_dir/flake.nix"
# What the flake was generated with, for tests and humans (not read by Nix).
cat >"$flake_dir/lab-flake.env" <<EOF
LAB_FLAKE_GENERATION=$generation
LAB_FLAKE_KERNEL_VERSION=$kernel_version
LAB_FLAKE_BOARD_KERNELS="$board_kernel"
LAB_FLAKE_PACKAGES="$packages"
LAB_FLAKE_FAIL_ACTIVATION="$fail_activation"
LAB_FLAKE_BROKEN_UNIT="$broken_unit"
LAB_FLAKE_UNIT_DIES="$unit_dies"
LAB_FLAKE_RESTART_SSHD="$restart_sshd"
LAB_FLAKE_BOOT_FALLS_BACK="$boot_falls_back"
LAB_FLAKE_HOSTS="$LAB_HOSTS"
LAB_FLAKE_EVAL_SECONDS=$LAB_EVAL_SECONDS
LAB_FLAKE_EVAL_ROUNDS=$eval_rounds
LAB_FLAKE_EVAL_MIB=$LAB_EVAL_MIB
EOF
echo "path:$flake_dir"
