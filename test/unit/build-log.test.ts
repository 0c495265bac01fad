import { describe, expect, it } from 'vitest';
import {
  BuildLogParser,
  BuildLogRecorder,
  drvName,
  exactIntegers,
  ignoredRestrictedSetting,
  isBuiltOn,
  isOutputNoise,
  parseBuildResults,
} from '../../lib/nix/build-log.ts';
import { fixture } from '../helpers/fixtures.ts';

// Shapes as printed by `nix --log-format internal-json build` (Nix 2.8).
const lines = [
  '@nix {"action":"start","id":1,"level":0,"text":"","type":104}',
  '@nix {"action":"start","fields":["/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv","ssh://nix-builder@opi03.internal",1,1],"id":7,"level":3,"text":"building \'/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv\' on \'ssh://nix-builder@opi03.internal\'","type":105}',
  '@nix {"action":"result","fields":["  CC      kernel/fork.o"],"id":7,"type":101}',
  '@nix {"action":"start","fields":["/nix/store/2zm4rahx77g4c80hn2qvx802dnpva6cn-nixos-system-opi03.drv","",1,1],"id":8,"level":3,"text":"building","type":105}',
  '@nix {"action":"msg","level":0,"msg":"\\u001b[31;1merror:\\u001b[0m builder failed"}',
  'plain text line',
];

describe('build log parser', () => {
  it('tells which machine built what, and passes log lines through', () => {
    const parser = new BuildLogParser();
    const events = lines.map((line) => parser.parse(line));
    expect(events).toEqual([
      undefined,
      { kind: 'build-start', drvPath: '/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv', machine: 'ssh://nix-builder@opi03.internal' },
      { kind: 'build-log', drvName: 'linux-6.1-opi', line: '  CC      kernel/fork.o' },
      { kind: 'build-start', drvPath: '/nix/store/2zm4rahx77g4c80hn2qvx802dnpva6cn-nixos-system-opi03.drv', machine: undefined },
      { kind: 'message', level: 0, text: 'error: builder failed' },
      { kind: 'text', text: 'plain text line' },
    ]);
    expect(parser.builds.map((b) => [drvName(b.drvPath), b.machine])).toEqual([
      ['linux-6.1-opi', 'ssh://nix-builder@opi03.internal'],
      ['nixos-system-opi03', undefined],
    ]);
  });

  it('reads nix build --json', () => {
    expect(parseBuildResults('[{"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/a"}}]')).toEqual([
      { drvPath: '/nix/store/a.drv', outputs: { out: '/nix/store/a' } },
    ]);
    expect(() => parseBuildResults('{}')).toThrow(/did not print a list/);
  });
});

const LOCAL_DRV = '/nix/store/bd9fa02q2sd8lnn8g4cz18wpl2yqcgb4-avalanche-fixture-fail.drv';
const REMOTE_DRV = '/nix/store/r5yakdq0x37mhfb9kyah1hw36w22vvdl-avalanche-fixture-remote-fail.drv';
const REMOTE_URI = 'ssh://root@127.0.0.1?remote-program=/tmp/nixcap/remote-nix-store';

function record(text: string, options?: ConstructorParameters<typeof BuildLogRecorder>[0]): BuildLogRecorder {
  const recorder = new BuildLogRecorder(options);
  for (const line of text.split('\n').filter((l) => l !== '')) recorder.add(line, 'stderr');
  return recorder;
}

describe('build log recorder, real Nix 2.8 output', () => {
  it('a local build that fails: the error, the derivation and its last log lines without colours', () => {
    const log = record(fixture('nix-log/local-build-fails-2.8.log'));
    expect(log.builds).toEqual([{ drvPath: LOCAL_DRV, machine: undefined, startedAt: expect.any(Number), endedAt: expect.any(Number) }]);
    expect(log.failureLines()).toEqual([
      `error: builder for '${LOCAL_DRV}' failed with exit code 3`,
      'avalanche-fixture-fail on this machine, last 3 log lines:',
      '  hello',
      '  red line',
      '  oops',
    ]);
  });

  it('a remote build that fails: the builder\'s exit code 3 as well as the hook\'s 1, and the machine', () => {
    const log = record(fixture('nix-log/remote-build-fails-2.8.log'));
    expect(log.builds).toEqual([{ drvPath: REMOTE_DRV, machine: REMOTE_URI, startedAt: expect.any(Number), endedAt: expect.any(Number) }]);
    expect(log.failureLines()).toEqual([
      `error: build of '${REMOTE_DRV}' on '${REMOTE_URI}' failed: builder for '${REMOTE_DRV}' failed with exit code 3`,
      `error: builder for '${REMOTE_DRV}' failed with exit code 1`,
      `avalanche-fixture-remote-fail on ${REMOTE_URI}, last 3 log lines:`,
      '  compiling',
      '  red line',
      '  oops',
    ]);
    expect(isBuiltOn(log.builds[0]!.machine, 'ssh://root@127.0.0.1')).toBe(true);
  });
});

// Hand-written in Nix 2.26's shape (keys sorted, "parent", ids (pid << 32) + n of a worker with a
// pid near pid_max = 2^22): Number() rounds ...691 and ...692 to the same double.
const ID_A = '18014394214514691';
const ID_B = '18014394214514692';
const KERNEL = '/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv';
const FIRMWARE = '/nix/store/2zm4rahx77g4c80hn2qvx802dnpva6cn-firmware-opi.drv';
const start226 = (id: string, drv: string, machine: string) =>
  `@nix {"action":"start","fields":["${drv}","${machine}",1,1],"id":${id},"level":3,"parent":0,"text":"building '${drv}' on '${machine}'","type":105}`;
const logLine226 = (id: string, line: string) => `@nix {"action":"result","fields":[${JSON.stringify(line)}],"id":${id},"type":101}`;

describe('activity ids beyond 2^53', () => {
  it('keeps neighbouring ids apart: each log line names its own derivation', () => {
    expect(Number(ID_A)).toBe(Number(ID_B)); // the premise: as doubles they are one id
    const parser = new BuildLogParser();
    const events = [
      start226(ID_A, KERNEL, 'ssh://nix-builder@opi03.internal'),
      start226(ID_B, FIRMWARE, 'ssh://nix-builder@opi03.internal'),
      logLine226(ID_A, '  CC      kernel/fork.o'),
      logLine226(ID_B, 'unpacking firmware'),
    ].map((line) => parser.parse(line));
    expect(events.slice(2)).toEqual([
      { kind: 'build-log', drvName: 'linux-6.1-opi', line: '  CC      kernel/fork.o' },
      { kind: 'build-log', drvName: 'firmware-opi', line: 'unpacking firmware' },
    ]);
  });

  it('times each build from its start to its own stop record, read by the given clock (ids told apart exactly)', () => {
    let now = 1000;
    const parser = new BuildLogParser(() => now);
    const stop = (id: string) => `@nix {"action":"stop","id":${id}}`;
    parser.parse(start226(ID_A, KERNEL, 'ssh://nix-builder@opi03.internal'));
    now = 1500;
    parser.parse(start226(ID_B, FIRMWARE, 'ssh://nix-builder@opi03.internal'));
    now = 2500;
    expect(parser.building).toBe(true);
    expect(parser.parse(stop(ID_B))).toEqual({ kind: 'build-stop', drvPath: FIRMWARE });
    expect(parser.building).toBe(true); // the kernel still builds
    now = 41_000;
    parser.parse(stop(ID_A));
    expect(parser.parse(stop('99'))).toBeUndefined(); // another activity's stop changes nothing
    expect(parser.building).toBe(false);
    expect(parser.builds).toEqual([
      { drvPath: KERNEL, machine: 'ssh://nix-builder@opi03.internal', startedAt: 1000, endedAt: 41_000 },
      { drvPath: FIRMWARE, machine: 'ssh://nix-builder@opi03.internal', startedAt: 1500, endedAt: 2500 },
    ]);
  });

  it('reads integers exactly from the raw text, never from inside a string', () => {
    const raw = `{"action":"msg","msg":"\\"id\\":1 and \\\\","id":${ID_A},"parent":${ID_B},"fields":[3,"x"]}`;
    expect(JSON.parse(raw).msg).toBe('"id":1 and \\');
    expect(Object.fromEntries(exactIntegers(raw, ['id', 'parent']))).toEqual({ id: ID_A, parent: ID_B });
  });
});

describe('the daemon\'s restricted-setting warning', () => {
  it.each([
    // Nix 2.22 on (src/libstore/daemon.cc), as the client re-logs what the daemon sent: level 0, coloured "warning:"
    ["\u001b[35;1mwarning:\u001b[0m ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user", 'builders'],
    // Lix
    ["warning: Ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user", 'builders'],
    // Nix 2.3
    ["warning: ignoring the user-specified setting 'builders-use-substitutes', because it is a restricted setting and you are not a trusted user", 'builders-use-substitutes'],
    ["warning: ignoring untrusted substituter 'http://hawk.internal:5000', you are not a trusted user.", undefined],
  ])('%s', (message, setting) => {
    expect(ignoredRestrictedSetting(message)).toBe(setting);
  });

  it('is recorded, once, from the log', () => {
    const warning = "\u001b[35;1mwarning:\u001b[0m ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user";
    const line = `@nix {"action":"msg","level":0,"msg":${JSON.stringify(warning)}}`;
    const log = record([line, line, line].join('\n'));
    expect([...log.ignoredSettings]).toEqual(['builders']);
    expect(log.messages).toEqual(["warning: ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user"]);
  });
});

describe('the recorder stays bounded', () => {
  it('keeps the last log lines per derivation, the last messages, and no progress records', () => {
    const lines = [
      start226(ID_A, KERNEL, 'ssh://nix-builder@opi03.internal'),
      ...Array.from({ length: 500 }, (_, i) => logLine226(ID_A, `line ${i}`)),
      ...Array.from({ length: 200 }, (_, i) => `@nix {"action":"result","fields":[${i},300,0,0],"id":${ID_B},"type":105}`),
      ...Array.from({ length: 50 }, (_, i) => `@nix {"action":"msg","level":1,"msg":"warning ${i}"}`),
      `@nix {"action":"msg","level":3,"msg":"info is not kept"}`,
      `@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"error: builder for '${KERNEL}' failed with exit code 2","raw_msg":"builder for '${KERNEL}' failed with exit code 2"}`,
    ];
    const log = record(lines.join('\n'), { logLinesPerDrv: 5, maxNotes: 3 });
    expect(log.logTail(KERNEL)).toEqual(['line 495', 'line 496', 'line 497', 'line 498', 'line 499']);
    expect(log.messages).toEqual(['warning 48', 'warning 49', `error: builder for '${KERNEL}' failed with exit code 2`]);
    expect(log.failureLines().some((l) => l.includes('@nix'))).toBe(false);
  });
});

describe('where a build ran', () => {
  it('compares the machine Nix reports with the builder URI, parameters aside; a local build is nowhere', () => {
    expect(isBuiltOn('ssh://nix-builder@opi03.internal', 'ssh://nix-builder@opi03.internal')).toBe(true);
    expect(isBuiltOn('ssh://nix-builder@opi03.internal?remote-store=local', 'ssh://nix-builder@opi03.internal')).toBe(true);
    expect(isBuiltOn('ssh://nix-builder@opi01.internal', 'ssh://nix-builder@opi03.internal')).toBe(false);
    expect(isBuiltOn(undefined, 'ssh://nix-builder@opi03.internal')).toBe(false);
  });
});

describe('noise in Nix\'s and nixos-rebuild\'s output', () => {
  it('is "copying 0 paths", nix build\'s JSON result and ssh\'s pseudo-terminal notice; nothing else', () => {
    expect(isOutputNoise('copying 0 paths')).toBe(true);
    expect(isOutputNoise('copying 0 paths...')).toBe(true);
    expect(isOutputNoise('\u001b[1mcopying 0 paths...\u001b[0m\r')).toBe(true);
    expect(isOutputNoise('[{"drvPath":"/nix/store/1vywq121qhh8y6hakaxa5n96fvvznv3k-fixture-toplevel.drv","outputs":{"out":"/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel"}}]')).toBe(true);
    expect(isOutputNoise('Pseudo-terminal will not be allocated because stdin is not a terminal.\r')).toBe(true);
    for (const kept of ['copying 1 paths', 'copying 10 paths...', "copying path '/nix/store/a-b' from 'http://hawk.internal:5000'...", 'building the system configuration...', '/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel', 'error: copying 0 paths failed']) {
      expect(isOutputNoise(kept), kept).toBe(false);
    }
  });

  it('is not kept by the recorder as a message a failure would show (a real Nix 2.8 log)', () => {
    const recorder = new BuildLogRecorder();
    const shown = fixture('nix-log/remote-build-fails-2.8.log')
      .split('\n')
      .map((line) => recorder.add(line))
      .flatMap((event) => (event && 'text' in event ? [event.text] : []));
    // The parser still reports the activity (the seed build leaves it out of what it shows) …
    expect(shown).toContain('copying 0 paths');
    recorder.add('copying 0 paths...');
    // … and the recorder keeps neither form for a failure's description.
    expect(recorder.messages.some((m) => m.includes('copying 0 paths'))).toBe(false);
  });
});
