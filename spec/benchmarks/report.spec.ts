import { expect } from 'chai';

import { benchFileArgs, benchFileBody, stderrExcerpt } from '../../benchmarks/lib/bench-file.js';
import type { BarChartSpec } from '../../benchmarks/lib/chart.js';
import { needsLogScale, renderBarChart } from '../../benchmarks/lib/chart.js';
import {
  summarize,
  targetsSection,
  throughputChart,
  throughputSection,
} from '../../benchmarks/lib/channel-report.js';
import type { ChannelRun, Summary } from '../../benchmarks/lib/channel-report.js';
import { Progress } from '../../benchmarks/lib/progress.js';
import type { Implementation } from '../../benchmarks/lib/protocol.js';
import {
  fenced,
  formatDuration,
  formatNumber,
  formatRatio,
  loadVerdict,
  markdownTable,
  median,
  renderMarkdown,
  renderText,
} from '../../benchmarks/lib/report.js';
import type { Report } from '../../benchmarks/lib/report.js';

interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  /** The text directly inside it (entities left as they are). */
  readonly text: string;
}

/**
 * A strict reading of `source` as an XML document: one root element, every tag closed in
 * order, attributes quoted and not repeated, `&` only in entities. Throws on the first
 * fault; returns the elements in document order.
 */
function parseXml(source: string): XmlElement[] {
  const elements: { name: string; attributes: Map<string, string>; text: string }[] = [];
  const open: number[] = [];
  const tag =
    /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
  const attribute = /\s+([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const badAmpersand = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/;
  let roots = 0;
  let at = 0;
  const text = (from: number, to: number): void => {
    const between = source.slice(from, to);
    if (badAmpersand.test(between)) throw new Error(`bare & near ${from}`);
    if (open.length === 0) {
      if (between.trim() !== '') throw new Error(`text outside the root near ${from}`);
    } else {
      elements[open.at(-1)!]!.text += between;
    }
  };
  while (at < source.length) {
    const lt = source.indexOf('<', at);
    if (lt < 0) {
      text(at, source.length);
      break;
    }
    text(at, lt);
    if (source.startsWith('<![CDATA[', lt)) {
      if (open.length === 0) throw new Error('CDATA outside the root');
      const end = source.indexOf(']]>', lt);
      if (end < 0) throw new Error('unterminated CDATA');
      at = end + 3;
      continue;
    }
    if (source.startsWith('<!--', lt) || source.startsWith('<?', lt)) {
      const end = source.indexOf(source.startsWith('<!--', lt) ? '-->' : '?>', lt);
      if (end < 0) throw new Error(`unterminated comment or declaration at ${lt}`);
      at = end + (source.startsWith('<!--', lt) ? 3 : 2);
      continue;
    }
    tag.lastIndex = lt;
    const match = tag.exec(source);
    if (match === null) throw new Error(`malformed tag at ${lt}: ${source.slice(lt, lt + 40)}`);
    const [whole, closing, name, attributeText, selfClosing] = match;
    at = lt + whole.length;
    if (closing === '/') {
      if (attributeText !== '' || selfClosing === '/')
        throw new Error(`malformed end tag ${whole}`);
      const top = open.pop();
      if (top === undefined || elements[top]!.name !== name) {
        throw new Error(
          `</${name}> does not close ${top === undefined ? 'anything' : elements[top]!.name}`,
        );
      }
      continue;
    }
    if (open.length === 0 && ++roots > 1) throw new Error('more than one root element');
    const attributes = new Map<string, string>();
    for (const [, key, double, single] of attributeText!.matchAll(attribute)) {
      if (attributes.has(key!)) throw new Error(`attribute ${key} repeated in ${name}`);
      const value = double ?? single ?? '';
      if (badAmpersand.test(value)) throw new Error(`bare & in attribute ${key}`);
      attributes.set(key!, value);
    }
    elements.push({ name: name!, attributes, text: '' });
    if (selfClosing !== '/') open.push(elements.length - 1);
  }
  if (open.length > 0) throw new Error(`<${elements[open.at(-1)!]!.name}> is never closed`);
  if (roots !== 1) throw new Error('no root element');
  return elements;
}

describe('parseXml (the spec helper)', () => {
  it('reads a well-formed document and rejects broken ones', () => {
    const elements = parseXml(
      '<svg a="1"><g><text x=\'2\'>a &amp; b</text></g><style><![CDATA[x<y]]></style></svg>',
    );
    expect(elements.map((e) => e.name)).to.deep.equal(['svg', 'g', 'text', 'style']);
    expect(elements[2]!.text).to.equal('a &amp; b');
    for (const broken of ['<a><b></a></b>', '<a>', '<a></a><b></b>', '<a x=1></a>', '<a>&</a>']) {
      expect(() => parseXml(broken), broken).to.throw(Error);
    }
  });
});

describe('benchmarks/lib/report', () => {
  describe('formatting', () => {
    it('formats numbers with separators and fixed decimals', () => {
      expect(formatNumber(1234567.891)).to.equal('1,234,568');
      expect(formatNumber(0.5, 2)).to.equal('0.50');
      expect(formatNumber(NaN)).to.equal('NaN');
    });

    it('formats a ratio, blank when either side is missing or the divisor is zero', () => {
      expect(formatRatio(414, 197)).to.equal('2.10x');
      expect(formatRatio(null, 1)).to.equal('');
      expect(formatRatio(1, undefined)).to.equal('');
      expect(formatRatio(1, 0)).to.equal('');
    });

    it('formats durations as m:ss, and h:mm:ss from an hour on', () => {
      expect(formatDuration(0)).to.equal('0:00');
      expect(formatDuration(59.6)).to.equal('1:00');
      expect(formatDuration(754)).to.equal('12:34');
      expect(formatDuration(3723)).to.equal('1:02:03');
      expect(formatDuration(-3)).to.equal('0:00');
    });

    it('takes the median of odd and even counts and refuses an empty list', () => {
      expect(median([3, 1, 2])).to.equal(2);
      expect(median([4, 1, 3, 2])).to.equal(2.5);
      expect(() => median([])).to.throw(RangeError, 'Expected at least one value, got none');
    });

    it('fences text with a fence longer than any run of backticks in it', () => {
      expect(fenced('a\nb')).to.equal('```text\na\nb\n```');
      expect(fenced('x ```` y', 'md')).to.equal('`````md\nx ```` y\n`````');
    });
  });

  describe('markdownTable()', () => {
    it('pads the columns, right-aligns the numeric ones, escapes | and blanks missing cells', () => {
      const table = markdownTable({
        header: ['name', 'ns/msg', 'note'],
        rows: [
          ['sluice', '414', 'a|b'],
          ['floor', '1,197'],
        ],
        right: [1],
      });
      expect(table).to.equal(
        [
          '| name   | ns/msg | note |',
          '|--------|-------:|------|',
          '| sluice |    414 | a\\|b |',
          '| floor  |  1,197 |      |',
        ].join('\n'),
      );
    });
  });

  describe('loadVerdict()', () => {
    it('says the machine was idle, loaded for a while, or loaded', () => {
      expect(loadVerdict(2, [1.1, 1.3, 0.9])).to.equal(
        '1-minute load average during the run: median 1.10, peak 1.30, on 2 cores (the benchmark itself accounts for about 1). The machine was otherwise mostly idle.',
      );
      expect(loadVerdict(2, [1, 1, 3])).to.equal(
        '1-minute load average during the run: median 1.00, peak 3.00, on 2 cores (the benchmark itself accounts for about 1). Other work loaded the machine for part of the run: some figures may be high.',
      );
      expect(loadVerdict(2, [4, 5])).to.match(
        /^1-minute load average during the run: median 4\.50, peak 5\.00, on 2 cores .*\*\*The machine was loaded by other work\*\*/,
      );
      expect(loadVerdict(2, [])).to.equal('The load average was not sampled.');
    });
  });

  describe('renderMarkdown() and renderText()', () => {
    const report: Report = {
      machine: {
        cpuModel: 'Test CPU',
        cores: 2,
        memoryGiB: 24,
        node: 'v20.20.2',
        platform: 'linux x64',
        date: '2026-01-02T03:04:05Z',
        loadSamples: [1, 1.2, 1.4],
        commit: 'abc1234',
        uncommitted: ['lib/channel.ts'],
      },
      command: 'npm run bench',
      seconds: 725,
      suites: [
        {
          name: 'channel',
          title: 'Channel throughput',
          command: 'npm run bench -- channel',
          seconds: 500,
          failed: false,
          sections: [
            { title: '', body: 'Intro.' },
            { title: 'A. SPSC', body: '| a |\n|---|\n| 1 |' },
          ],
        },
        {
          name: 'select',
          title: 'select against ts-chan',
          command: 'node --import tsx benchmarks/select.bench.ts',
          seconds: 65,
          failed: true,
          sections: [{ title: '', body: '**ERROR**: exited with code 1' }],
        },
      ],
      chart: { file: 'results.svg', caption: 'Throughput, ns/msg' },
      skipped: [{ name: 'server', reason: 'opt-in' }],
    };

    it('writes the header, the chart, every suite and what was not run', () => {
      expect(renderMarkdown(report)).to.equal(
        [
          '# Benchmark results',
          '',
          'Produced by `npm run bench` (`benchmarks/run.ts`) on 2026-01-02T03:04:05Z, in 12:05. Written by the runner: do not edit by hand, run it again.',
          '',
          '- Machine: Test CPU, 2 cores, 24 GiB, linux x64',
          '- Node v20.20.2',
          '- Code: commit `abc1234`, with uncommitted changes in `lib/channel.ts`',
          '- Load: 1-minute load average during the run: median 1.20, peak 1.40, on 2 cores (the benchmark itself accounts for about 1). The machine was otherwise mostly idle.',
          '',
          '![Throughput, ns/msg](results.svg)',
          '',
          '_Throughput, ns/msg_',
          '',
          '## channel: Channel throughput',
          '',
          '`npm run bench -- channel` — 8:20',
          '',
          'Intro.',
          '',
          '### A. SPSC',
          '',
          '| a |\n|---|\n| 1 |',
          '',
          '## select: select against ts-chan',
          '',
          '`node --import tsx benchmarks/select.bench.ts` — 1:05 — **FAILED** (see below)',
          '',
          '**ERROR**: exited with code 1',
          '',
          '## Not run',
          '',
          '- server: opt-in',
          '',
        ].join('\n'),
      );
    });

    it('leaves out the chart and the code line details it does not have', () => {
      const bare = renderMarkdown({
        ...report,
        machine: { ...report.machine, commit: null, uncommitted: [] },
        chart: null,
        skipped: [],
      });
      expect(bare).to.include('- Code: commit unknown\n');
      expect(bare).not.to.include('![');
      expect(bare).not.to.include('## Not run');
    });

    it('prints a suite for the terminal with plain titles', () => {
      expect(renderText(report.suites[0]!)).to.equal(
        '== channel: Channel throughput\n\nIntro.\n\nA. SPSC\n\n| a |\n|---|\n| 1 |',
      );
      expect(renderText(report.suites[1]!)).to.equal(
        '== select: select against ts-chan (FAILED)\n\n**ERROR**: exited with code 1',
      );
    });
  });
});

describe('benchmarks/lib/bench-file', () => {
  it('passes the quick arguments only with --quick, and --runs in place of theirs', () => {
    const quick = ['--runs', '1', '--n', '100000'];
    expect(benchFileArgs(quick, { quick: false, runs: undefined })).to.deep.equal([]);
    expect(benchFileArgs(quick, { quick: true, runs: undefined })).to.deep.equal(quick);
    expect(benchFileArgs(quick, { quick: true, runs: 3 })).to.deep.equal([
      '--n',
      '100000',
      '--runs',
      '3',
    ]);
    expect(benchFileArgs(['--quick'], { quick: false, runs: 2 })).to.deep.equal(['--runs', '2']);
    expect(quick).to.deep.equal(['--runs', '1', '--n', '100000']);
  });

  it('keeps markdown output as it is, fences text, and adds the failure with the stderr tail', () => {
    expect(benchFileBody('\n| a |\n|---|\n', true, null, 'progress')).to.equal('| a |\n|---|');
    expect(benchFileBody('  sluice  12 ms\n', false, null, '')).to.equal(
      '```text\nsluice  12 ms\n```',
    );
    expect(benchFileBody('', false, 'exited with code 1', 'Error: boom\n')).to.equal(
      '**ERROR**: exited with code 1\n\n```text\nError: boom\n```',
    );
  });
});

describe('benchmarks/lib/bench-file stderrExcerpt()', () => {
  const letters = (word: string): string[] => word.split('');
  it('shows the lines from the first error, or the last lines when none names one', () => {
    const trace = [
      '',
      'node:internal/x:1',
      '    throw e',
      'TypeError: bad',
      ...letters('abcdefghijklmn'),
    ];
    expect(stderrExcerpt(trace.join('\n'))).to.equal(
      ['TypeError: bad', ...letters('abcdefghijk')].join('\n'),
    );
    expect(stderrExcerpt(['round 1', ...letters('abcdefgh'), ''].join('\n'))).to.equal(
      letters('abcdefgh').join('\n'),
    );
  });
});

describe('benchmarks/lib/channel-report', () => {
  const impl = (id: string, name: string, lacks: Implementation['lacks'] = {}): Implementation => ({
    id,
    name,
    lacks,
    load: () => Promise.reject(new Error('not loaded in this test')),
  });
  const throughput = (ns: number, cpu: number, shares: number[] = [100]) =>
    ({ ok: true, nsPerMessage: ns, cpuNsPerMessage: cpu, shares }) as const;
  const run: ChannelRun = {
    n: 1000,
    runs: 3,
    instances: 100,
    jobs: ['spsc', 'batch'],
    impls: [
      impl('floor', 'floor'),
      impl('sluice', 'sluice'),
      impl('peer', 'a peer', { batch: 'no trySend' }),
      impl('broken', 'broken'),
    ],
  };
  const results = new Map<string, Summary>([
    ['spsc/floor', summarize([throughput(200, 210), throughput(190, 200), throughput(220, 230)])],
    ['spsc/sluice', summarize([throughput(400, 420), throughput(380, 400), throughput(410, 430)])],
    [
      'spsc/peer',
      summarize([throughput(2000, 1900), throughput(2100, 2000), throughput(1900, 1800)]),
    ],
    [
      'spsc/broken',
      summarize([throughput(1, 1), { ok: false, error: 'lost 3\nstack' }, throughput(2, 2)]),
    ],
    ['batch/floor', summarize([throughput(220, 220)])],
    ['batch/sluice', summarize([throughput(120, 120)])],
  ]);

  it('sums up runs: medians, range, the shares of the median run, and no median after an error', () => {
    const summary = summarize([
      throughput(300, 310, [60, 40]),
      throughput(100, 110, [50, 50]),
      throughput(200, 190, [45, 55]),
    ]);
    expect(summary).to.deep.equal({
      median: 200,
      min: 100,
      max: 300,
      cpu: 190,
      shares: [45, 55],
      errors: [],
      runs: 3,
    });
    const failed = results.get('spsc/broken')!;
    expect(failed.median).to.equal(null);
    expect(failed.cpu).to.equal(null);
    expect(failed.errors).to.deep.equal(['lost 3\nstack']);
  });

  it('tabulates a scenario with ratios to the floor and sluice / this, lacks and errors', () => {
    const section = throughputSection('spsc', run, results);
    expect(section.title).to.equal(
      'A. SPSC, capacity 64: `await send(i)` in a loop, `for await` to receive',
    );
    expect(section.body).to.equal(
      [
        '| implementation | ns/msg |     min-max | x floor | sluice / this | cpu ns/msg | x floor | sluice / this | note                      |',
        '|----------------|-------:|------------:|--------:|--------------:|-----------:|--------:|--------------:|---------------------------|',
        '| floor          |    200 |     190-220 |   1.00x |         2.00x |        210 |   1.00x |         2.00x |                           |',
        '| sluice         |    400 |     380-410 |   2.00x |         1.00x |        420 |   2.00x |         1.00x |                           |',
        '| a peer         |  2,000 | 1,900-2,100 |  10.00x |         0.20x |      1,900 |   9.05x |         0.22x |                           |',
        '| broken         |      - |             |         |               |            |         |               | ERROR in 1/3 runs: lost 3 |',
      ].join('\n'),
    );
    expect(throughputSection('batch', run, results).body.split('\n')[4]).to.equal(
      '| a peer         |      - |         |         |               |            |         |               | lacks: no trySend |',
    );
  });

  it('checks the targets it has figures for', () => {
    expect(targetsSection(results, [])).to.deep.equal({
      title: 'Targets (measured, not tested)',
      body: '- MISSES  A sluice / floor: 2.00x wall, 2.00x cpu (target <= 1.10x)',
    });
    expect(targetsSection(new Map(), [])).to.equal(null);
  });

  it('charts one series per implementation with a figure, null where it has none', () => {
    const chart = throughputChart(run, results, 'subtitle');
    expect(chart).to.deep.equal({
      title: 'Channel throughput: ns per message, lower is better',
      subtitle: 'subtitle',
      unit: 'ns/msg',
      categories: ['A. SPSC, capacity 64', 'D. batch (try* first)'],
      series: [
        { name: 'floor', role: 'reference', values: [200, 220] },
        { name: 'sluice', role: 'ours', values: [400, 120] },
        { name: 'a peer', role: 'peer', values: [2000, null] },
      ],
    });
    expect(throughputChart({ ...run, jobs: ['idle'] }, results, '')).to.equal(null);
  });
});

describe('benchmarks/lib/chart', () => {
  const spec: BarChartSpec = {
    title: 'Channel throughput',
    subtitle: 'ns per message\nsecond line',
    unit: 'ns/msg',
    categories: ['A. SPSC', 'B. rendezvous', 'D. batch'],
    series: [
      { name: 'floor', role: 'reference', values: [197, 204, 217] },
      { name: 'sluice', role: 'ours', values: [414, 417, 124] },
      { name: 'medium', role: 'peer', values: [381, 411, null] },
      { name: '@repeaterjs/repeater', role: 'peer', values: [9518, 7900, null] },
    ],
  };

  it('renders a well-formed SVG document of the given size with one bar series per implementation', () => {
    const svg = renderBarChart({ ...spec, width: 800, height: 500 });
    const elements = parseXml(svg);
    const root = elements[0]!;
    expect(root.name).to.equal('svg');
    expect(root.attributes.get('xmlns')).to.equal('http://www.w3.org/2000/svg');
    expect([root.attributes.get('width'), root.attributes.get('height')]).to.deep.equal([
      '800',
      '500',
    ]);
    const bars = elements.filter((e) => e.attributes.get('ecmeta_ssr_type') === 'chart');
    const perSeries = new Map<string, number>();
    for (const bar of bars) {
      const index = bar.attributes.get('ecmeta_series_index')!;
      perSeries.set(index, (perSeries.get(index) ?? 0) + 1);
    }
    // One series per implementation, one bar per figure (a null leaves its slot empty).
    expect([...perSeries]).to.deep.equal([
      ['0', 3],
      ['1', 3],
      ['2', 2],
      ['3', 2],
    ]);
    const fills = [0, 1, 2, 3].map((i) =>
      bars
        .find((b) => b.attributes.get('ecmeta_series_index') === String(i))!
        .attributes.get('fill'),
    );
    expect(new Set(fills).size).to.equal(4);
    expect(fills[1]).to.equal('#d9480f');
    const texts = elements.filter((e) => e.name === 'text').map((e) => e.text);
    for (const name of ['floor', 'sluice', 'medium', '@repeaterjs/repeater']) {
      expect(
        texts.filter((t) => t === name),
        name,
      ).to.have.length(1);
    }
    for (const label of ['Channel throughput', 'A. SPSC', 'D. batch', '9,518', '124']) {
      expect(texts, label).to.include(label);
    }
  });

  it('uses a log scale when the figures spread over more than 20 times', () => {
    expect(needsLogScale(spec.series)).to.equal(true);
    expect(needsLogScale([{ name: 'x', role: 'ours', values: [100, 1999, null, 0] }])).to.equal(
      false,
    );
    expect(needsLogScale([])).to.equal(false);
    const texts = (svg: string): string[] =>
      parseXml(svg)
        .filter((e) => e.name === 'text')
        .map((e) => e.text);
    expect(texts(renderBarChart(spec))).to.include('ns/msg (log scale)');
    expect(texts(renderBarChart({ ...spec, scale: 'linear' }))).to.include('ns/msg');
    expect(texts(renderBarChart({ ...spec, scale: 'linear' }))).not.to.include(
      'ns/msg (log scale)',
    );
  });

  it('throws a RangeError when a series does not have one value per category', () => {
    expect(() =>
      renderBarChart({ ...spec, series: [{ name: 'short', role: 'peer', values: [1, 2] }] }),
    ).to.throw(RangeError, "Expected 3 values for series 'short', got 2");
  });
});

describe('benchmarks/lib/progress', () => {
  function collect(): { progress: Progress; output: () => string; tick: (ms: number) => void } {
    let now = 1000;
    let text = '';
    const progress = new Progress(
      {
        write: (chunk: string) => {
          text += chunk;
          return true;
        },
      },
      () => now,
    );
    return {
      progress,
      output: () => text,
      tick: (ms) => {
        now += ms;
      },
    };
  }

  it('stamps lines and steps with the elapsed time and estimates the time left', () => {
    const { progress, output, tick } = collect();
    progress.line('bench', 'suites: channel');
    tick(10_000);
    progress.step('channel', 1, 4, 'A · sluice: 414 ns/msg');
    tick(62_000);
    progress.step('channel', 4, 4, 'thenable check: done');
    expect(output()).to.equal(
      [
        '[0:00 bench] suites: channel',
        '[0:10 channel 1/4, ~0:30 left] A · sluice: 414 ns/msg',
        '[1:12 channel 4/4] thenable check: done',
        '',
      ].join('\n'),
    );
  });

  it('forwards a child’s output with a stamp on each line it starts, continuing open lines', () => {
    const { progress, output, tick } = collect();
    progress.forward('select', '..');
    tick(3000);
    progress.forward('select', '.\nround 1/5 ');
    progress.forward('select', 'sluice: 5 ms\n');
    progress.forward('select', '..');
    progress.line('select', 'done');
    progress.forward('select', 'x');
    progress.endLine();
    progress.endLine();
    expect(output()).to.equal(
      [
        '[0:00 select] ...',
        '[0:03 select] round 1/5 sluice: 5 ms',
        '[0:03 select] ..',
        '[0:03 select] done',
        '[0:03 select] x',
        '',
      ].join('\n'),
    );
  });
});
