import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { decodeUnlabelledBytes, transcodeHeaderLine } from './header-charset.js';

const cases: Array<[charset: string, text: string]> = [
  ['gb2312', '关于会议的通知'],
  ['gb2312', '发票'],
  ['gbk', '您好，附件是报价单'],
  ['big5', '會議通知與報價單'],
  ['big5', '報價單'],
  ['shift_jis', '会議のお知らせ'],
  ['shift_jis', 'ご注文ありがとうございます'],
  ['euc-jp', '会議のお知らせ'],
  ['euc-kr', '회의 안내 및 견적서'],
  ['euc-kr', '안녕하세요'],
  ['windows-1252', 'Réunion à café'],
  ['windows-1251', 'Счет на оплату'],
  ['koi8-r', 'Привет мир'],
];

describe('decodeUnlabelledBytes', () => {
  it.each(cases)('%s: %s without a declared charset', (charset, text) => {
    expect(decodeUnlabelledBytes(iconv.encode(text, charset), null).text).toBe(text);
  });

  it('keeps valid UTF-8 (RFC 6532 headers) as UTF-8', () => {
    expect(decodeUnlabelledBytes(Buffer.from('Grüße 会議', 'utf8'), 'gb2312')).toEqual({ text: 'Grüße 会議', charset: 'utf-8' });
  });

  it('falls back to the declared charset when detection is not sure (a kanji-only Shift_JIS subject)', () => {
    const bytes = iconv.encode('請求書', 'shift_jis');
    expect(decodeUnlabelledBytes(bytes, 'Shift_JIS').text).toBe('請求書');
    // A Japanese body is usually ISO-2022-JP (7-bit): raw 8-bit header bytes next to it are Shift_JIS.
    expect(decodeUnlabelledBytes(bytes, 'iso-2022-jp').text).toBe('請求書');
  });

  it('never throws on random bytes', () => {
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + (i % 40) }, (_, j) => (i * 31 + j * 17) % 256));
      expect(typeof decodeUnlabelledBytes(bytes, i % 2 ? 'gb2312' : null).text).toBe('string');
    }
  });
});

describe('transcodeHeaderLine', () => {
  it('re-encodes the 8-bit runs of a binary header line as UTF-8 bytes, leaving ASCII lines alone', () => {
    const line = Buffer.concat([Buffer.from('Subject: RE: '), iconv.encode('关于会议的通知', 'gb2312')]).toString('latin1');
    expect(Buffer.from(transcodeHeaderLine(line, null), 'latin1').toString('utf8')).toBe('Subject: RE: 关于会议的通知');
    expect(transcodeHeaderLine('Subject: plain', null)).toBe('Subject: plain');
  });
});

describe('nearly UTF-8', () => {
  it('reads UTF-8 cut in the middle of its last character as UTF-8, dropping the broken bytes', () => {
    const full = Buffer.from('Картинка с очень', 'utf8');
    expect(decodeUnlabelledBytes(full.subarray(0, full.length - 1), null)).toEqual({ text: 'Картинка с очен', charset: 'utf-8' });
  });
});

describe('long values', () => {
  it('chooses the charset of a value longer than the detection window on its head and decodes all of it', () => {
    const text = Array.from({ length: 800 }, (_, i) => `关于会议的通知 ${i}`).join(' ');
    const bytes = iconv.encode(text, 'gb18030');
    expect(bytes.length).toBeGreaterThan(8192);
    expect(decodeUnlabelledBytes(bytes, null)).toEqual({ text, charset: 'gb18030' });
    const cyrillic = Array.from({ length: 600 }, () => 'Счет на оплату').join(' ');
    expect(decodeUnlabelledBytes(iconv.encode(cyrillic, 'windows-1251'), null).text).toBe(cyrillic);
  });

  it('falls back to Windows-1252 for the whole value when its tail is not in the charset its head reads as', () => {
    const head = iconv.encode(Array.from({ length: 500 }, () => '关于会议的通知').join(' '), 'gb18030');
    const bytes = Buffer.concat([head, Buffer.from([0x20, 0xff, 0xff, 0xff, 0x20])]);
    expect(decodeUnlabelledBytes(bytes, null)).toEqual({ text: iconv.decode(bytes, 'windows-1252'), charset: 'windows-1252' });
  });

  it('reads a value with NUL or other C0 control bytes (binary data, not text in any charset) byte for byte', () => {
    const bytes = Buffer.from([0x53, 0x75, 0x62, 0x00, 0x02, 0xc4, 0xe3, 0xba, 0xc3, 0x07, 0xff]);
    expect(decodeUnlabelledBytes(bytes, 'gb2312')).toEqual({ text: iconv.decode(bytes, 'windows-1252'), charset: 'windows-1252' });
    // TAB is text: a GB2312 value with a tab in it is still read as GB2312.
    const tabbed = Buffer.concat([iconv.encode('关于会议的通知', 'gb18030'), Buffer.from('\t'), iconv.encode('请查收附件', 'gb18030')]);
    expect(decodeUnlabelledBytes(tabbed, null).text).toBe('关于会议的通知\t请查收附件');
  });

  it('spends no more on tens of kilobytes of 8-bit bytes taken for a header line than on its first 4 KiB', () => {
    // 8-bit bytes without control bytes: not recognisable as binary, so detection runs.
    const junk = (n: number): string => `Subject: ${Buffer.from(Array.from({ length: n }, (_, i) => 0x20 + ((i * 7919 + (i >> 3)) % 224))).toString('latin1')}`;
    const cpuMs = (line: string): number => {
      transcodeHeaderLine(line, 'gb2312');
      const started = process.cpuUsage();
      for (let i = 0; i < 5; i++) transcodeHeaderLine(line, 'gb2312');
      const cpu = process.cpuUsage(started);
      return (cpu.user + cpu.system) / 1000;
    };
    const short = cpuMs(junk(4000));
    const long = cpuMs(junk(64 * 1024));
    // Detection reads the head only: reading all 64 KiB cost about 16 times the 4 KiB line.
    expect(long).toBeLessThan(short * 4 + 5);
  });
});
