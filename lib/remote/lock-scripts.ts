/**
 * POSIX sh for the deploy lock file on the coordinator: one file that says
 * who holds it. Values reach the scripts as positional arguments ($1 the
 * lock path, $2 the holder record or id), never spliced into the text.
 */

/** ACQUIRE's exit status when another run holds the lock (it prints the holder record). */
export const LOCK_HELD = 75;
/** ACQUIRE's exit status when the lock file cannot be created at all (a directory that is not writable): not "held". */
export const LOCK_CANNOT_CREATE = 73;

// noclobber makes the redirection an atomic create-if-absent; a file that
// exists is a holder, one that cannot be made is a permission problem.
export const ACQUIRE_LOCK = `
mkdir -p "$(dirname "$1")" || exit ${LOCK_CANNOT_CREATE}
if err=$( ( set -C; printf '%s\\n' "$2" >"$1" ) 2>&1 ); then exit 0; fi
if [ -e "$1" ]; then cat "$1"; exit ${LOCK_HELD}; fi
printf '%s\\n' "$err" >&2
exit ${LOCK_CANNOT_CREATE}
`;
/** Removes whatever lock there is (--force-unlock). */
export const REMOVE_LOCK = `rm -f "$1"`;
/** Removes the lock only if it is still held by $2: a run that took it over meanwhile keeps its own. */
export const RELEASE_LOCK = `grep -qF -- "$2" "$1" 2>/dev/null && rm -f "$1"; exit 0`;
