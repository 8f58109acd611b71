// Runs once before the suite. Integration helpers create their own databases; nothing global yet.
export default function setup(): void {}
