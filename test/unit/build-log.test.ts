import { describe, expect, it } from 'vitest';
import { BuildLogParser, drvName, parseBuildResults } from '../../lib/nix/build-log.ts';

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
