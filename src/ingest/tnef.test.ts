import { describe, expect, it } from 'vitest';
import { isTnef, parseTnef, TnefError } from './tnef.js';

// A tiny TNEF writer (MS-OXTNEF 2.1.3): signature, key, then level/id/length/data/checksum attributes.
function attribute(level: number, id: number, data: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt8(level, 0);
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(data.length, 5);
  const sum = Buffer.alloc(2);
  sum.writeUInt16LE(data.reduce((s, b) => (s + b) % 65536, 0), 0);
  return Buffer.concat([head, data, sum]);
}
function tnef(...attrs: Buffer[]): Buffer {
  const start = Buffer.alloc(6);
  start.writeUInt32LE(0x223e9f78, 0);
  start.writeUInt16LE(0x0001, 4);
  return Buffer.concat([start, ...attrs]);
}
const pad4 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
};
/** An attAttachment property list of variable-size (string/binary) properties. */
function props(list: Array<[type: number, id: number, value: Buffer]>): Buffer {
  return Buffer.concat([u32(list.length), ...list.map(([type, id, value]) => Buffer.concat([u32((id << 16) | type), u32(1), u32(value.length), pad4(value)]))]);
}
const REND = 0x00069002;
const TITLE = 0x00018010;
const DATA = 0x0006800f;
const ATTACHMENT = 0x00069005;
const rend = () => attribute(2, REND, Buffer.alloc(14));

describe('parseTnef', () => {
  it('reads each attachment: 8.3 title, data, and the MAPI long name, type and Content-ID that win over it', () => {
    const unicodeName = Buffer.from('Quarterly report 2026.xlsx\0', 'utf16le');
    const bytes = tnef(
      attribute(1, 0x00089006, u32(0x00010000)), // attTnefVersion (message level, skipped)
      rend(),
      attribute(2, TITLE, Buffer.from('REPORT~1.XLS\0', 'latin1')),
      attribute(2, DATA, Buffer.from('sheet bytes')),
      attribute(2, ATTACHMENT, props([
        [0x001f, 0x3707, unicodeName],
        [0x001e, 0x370e, Buffer.from('application/vnd.ms-excel\0')],
        [0x001e, 0x3712, Buffer.from('img1@x\0')],
      ])),
      rend(),
      attribute(2, TITLE, Buffer.from('notes.txt\0')),
      attribute(2, DATA, Buffer.from('hello')),
    );
    expect(isTnef(bytes)).toBe(true);
    expect(parseTnef(bytes)).toEqual([
      { filename: 'Quarterly report 2026.xlsx', contentType: 'application/vnd.ms-excel', contentId: 'img1@x', data: Buffer.from('sheet bytes') },
      { filename: 'notes.txt', contentType: null, contentId: null, data: Buffer.from('hello') },
    ]);
  });

  it('takes PR_ATTACH_DATA_OBJ without its 16-byte interface id', () => {
    const object = Buffer.concat([Buffer.alloc(16, 0xab), Buffer.from('OLE compound file')]);
    const bytes = tnef(rend(), attribute(2, ATTACHMENT, props([[0x000d, 0x3701, object], [0x001e, 0x3001, Buffer.from('Untitled Attachment\0')]])));
    expect(parseTnef(bytes)).toEqual([{ filename: 'Untitled Attachment', contentType: null, contentId: null, data: Buffer.from('OLE compound file') }]);
  });

  it('refuses what is not TNEF or lies about its lengths (the caller keeps winmail.dat as it came)', () => {
    expect(() => parseTnef(Buffer.from('PK\u0003\u0004 a zip'))).toThrow(TnefError);
    const lying = tnef(rend(), attribute(2, DATA, Buffer.from('x')));
    lying.writeUInt32LE(0x7fffffff, 6 + 25 + 5); // the data attribute's length (after the 25-byte attAttachRendData)
    // Read as trailing garbage: nothing complete to unpack (the caller then keeps winmail.dat).
    expect(parseTnef(lying)).toEqual([]);
    const lyingFirst = tnef(attribute(2, DATA, Buffer.from('x')));
    lyingFirst.writeUInt32LE(0x7fffffff, 6 + 5);
    expect(() => parseTnef(lyingFirst)).toThrow(TnefError);
    const manyProps = tnef(rend(), attribute(2, ATTACHMENT, u32(0xffffffff)));
    expect(() => parseTnef(manyProps)).toThrow(TnefError);
    const cutProps = tnef(rend(), attribute(2, ATTACHMENT, Buffer.concat([u32(1), u32((0x3707 << 16) | 0x001e), u32(1), u32(1000)])));
    expect(() => parseTnef(cutProps)).toThrow(TnefError);
  });

  it('ignores garbage after the last attribute', () => {
    const bytes = Buffer.concat([tnef(rend(), attribute(2, TITLE, Buffer.from('a.txt\0')), attribute(2, DATA, Buffer.from('a'))), Buffer.from('\x02garbage!!!!!!')]);
    expect(parseTnef(bytes).map((a) => a.filename)).toEqual(['a.txt']);
  });
});
