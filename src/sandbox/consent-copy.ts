/**
 * What the stand-ins' consent pages say, so a person trying the sandbox understands them: each
 * requested scope in plain words (worded after what Google's and Microsoft's own consent screens
 * say), with the raw scope beside it, and a hint that this is a local stand-in where any address
 * works. Escaping is the caller's (both pages escape every interpolated value).
 */
const SCOPE_NAMES: Record<string, string> = {
  openid: 'Sign you in (your account identifier)',
  email: 'See your email address',
  profile: 'See your basic profile (name, picture)',
  offline_access: 'Keep access to what you allowed here while you are not using the app',
  'https://www.googleapis.com/auth/gmail.readonly': 'View your email messages and settings',
  'https://www.googleapis.com/auth/gmail.send': 'Send email on your behalf',
  'https://www.googleapis.com/auth/gmail.modify': 'Read, compose and send emails from your Gmail account',
  'https://www.googleapis.com/auth/userinfo.email': 'See your email address',
  'https://graph.microsoft.com/Mail.Read': 'Read your mail',
  'https://graph.microsoft.com/Mail.Send': 'Send mail as you',
  'https://graph.microsoft.com/User.Read': 'Sign you in and read your profile',
};

/** The plain-words name of a scope, or the scope itself when it is not one we know. */
export function humanScopeName(scope: string): string {
  return SCOPE_NAMES[scope] ?? scope;
}

/** The hint shown under the heading of both stand-ins' consent pages. */
export function sandboxConsentHint(provider: 'Google' | 'Microsoft'): string {
  return `This is the connector's local sandbox stand-in for ${provider} sign-in, not ${provider}. Type any email address: the mailbox is created on the spot, no password is asked, and nothing leaves this machine. Untick a permission or press Cancel to see how the connector handles it.`;
}
