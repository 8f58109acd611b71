import { describe, it, expect } from 'vitest';
import {
  addressSchema,
  addressListSchema,
  emailAddressSchema,
  subjectSchema,
  addressProblem,
  displayNameSchema,
} from './address-policy.js';

const issues = (result: { success: boolean; error?: { issues: { message: string }[] } }) =>
  result.error?.issues.map((i) => i.message).join('; ') ?? '';

describe('addressProblem', () => {
  it.each([
    'user@example.com',
    'first.last+tag@sub.example.co.uk',
    "o'brien@example.ie",
    'jürgen@müller.de',
    'x@xn--mller-kva.de',
    `${'a'.repeat(64)}@example.com`,
  ])('accepts %s', (address) => expect(addressProblem(address)).toBeNull());

  it.each([
    ['plainaddress', 'syntax'],
    ['@example.com', 'syntax'],
    ['user@', 'syntax'],
    ['user@localhost', 'syntax'],
    ['user@[127.0.0.1]', 'syntax'],
    ['"quoted"@example.com', 'syntax'],
    ['a..b@example.com', 'syntax'],
    ['.a@example.com', 'syntax'],
    ['a b@example.com', 'syntax'],
    ['user@exa_mple.com', 'syntax'],
    ['user@-example.com', 'syntax'],
    ['user@example.123', 'syntax'],
    [`${'a'.repeat(65)}@example.com`, 'too_long'],
    [`a@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.${'f'.repeat(60)}.com`, 'too_long'],
    ['user@example.com\r\nBcc: victim@example.org', 'control_character'],
    ['user\u0000@example.com', 'control_character'],
  ])('rejects %j as %s', (address, problem) => expect(addressProblem(address)).toBe(problem));
});

describe('address schemas', () => {
  it('parses the text and object forms into {name?, address}', () => {
    expect(addressSchema.parse('"Doe, Jane" <jane@example.com>')).toEqual({ name: 'Doe, Jane', address: 'jane@example.com' });
    expect(addressSchema.parse('Jane Doe <jane@example.com>')).toEqual({ name: 'Jane Doe', address: 'jane@example.com' });
    expect(addressSchema.parse('  jane@example.com ')).toEqual({ address: 'jane@example.com' });
    expect(addressSchema.parse({ name: ' Zoë ', address: 'zoe@example.com' })).toEqual({ name: 'Zoë', address: 'zoe@example.com' });
    expect(addressSchema.parse({ name: '', address: 'zoe@example.com' })).toEqual({ address: 'zoe@example.com' });
  });

  it('rejects header injection through names, addresses and text forms', () => {
    const attempts: unknown[] = [
      'Jane <jane@example.com>\r\nBcc: spy@evil.test',
      'Jane\n <jane@example.com>',
      { name: 'Jane\r\nBcc: spy@evil.test', address: 'jane@example.com' },
      { name: 'Jane', address: 'jane@example.com\nX-Injected: 1' },
      { name: 'Ja\u0000ne', address: 'jane@example.com' },
      { name: 'Jane\u2028', address: 'jane@example.com' },
    ];
    for (const attempt of attempts) {
      const result = addressSchema.safeParse(attempt);
      expect(result.success).toBe(false);
      expect(issues(result)).toMatch(/control character/);
      // the issue text never echoes the input
      expect(issues(result)).not.toMatch(/spy|jane@|X-Injected/);
    }
    expect(emailAddressSchema.safeParse('jane@example.com\r\n').success).toBe(false);
    expect(displayNameSchema.safeParse('ok name').success).toBe(true);
  });

  it('rejects groups, several addresses where one is expected, junk and unknown keys', () => {
    expect(addressSchema.safeParse('a@example.com, b@example.com').success).toBe(false);
    expect(addressSchema.safeParse('Team: a@example.com, b@example.com;').success).toBe(false);
    expect(addressSchema.safeParse('not an address').success).toBe(false);
    expect(addressSchema.safeParse({ address: 'a@example.com', bcc: 'x@example.com' }).success).toBe(false);
    expect(addressSchema.safeParse({ name: 'x'.repeat(300), address: 'a@example.com' }).success).toBe(false);
  });

  it('parses lists from a comma string or an array and drops duplicates', () => {
    expect(addressListSchema.parse('"Doe, Jane" <jane@example.com>, bob@example.com, JANE@example.com')).toEqual([
      { name: 'Doe, Jane', address: 'jane@example.com' },
      { address: 'bob@example.com' },
    ]);
    expect(addressListSchema.parse(['bob@example.com', { address: 'amy@example.com', name: 'Amy' }])).toEqual([
      { address: 'bob@example.com' },
      { name: 'Amy', address: 'amy@example.com' },
    ]);
    expect(addressListSchema.parse([])).toEqual([]);
    expect(addressListSchema.safeParse(['ok@example.com', 'bad@@example.com']).success).toBe(false);
    expect(addressListSchema.safeParse(Array.from({ length: 501 }, (_, i) => `u${i}@example.com`)).success).toBe(false);
  });

  it('accepts Unicode subjects and rejects line breaks and overlong ones', () => {
    expect(subjectSchema.parse('Ihre Anfrage: Größe ändern 🚀')).toBe('Ihre Anfrage: Größe ändern 🚀');
    expect(subjectSchema.safeParse('Hello\r\nBcc: spy@evil.test').success).toBe(false);
    expect(subjectSchema.safeParse('Hello\nworld').success).toBe(false);
    expect(subjectSchema.safeParse('nul\u0000').success).toBe(false);
    expect(subjectSchema.safeParse('x'.repeat(999)).success).toBe(false);
  });
});
