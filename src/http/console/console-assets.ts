/**
 * The console's one stylesheet, served as a file (`/admin/assets/console.css`) so the pages' CSP
 * can say `style-src 'self'` (no inline style). Colours meet WCAG 2.1 AA contrast on white
 * (text #1f2328 15.8:1, muted #59636e 6.1:1, links/buttons #0969da 5.0:1, danger #b42318 6.6:1).
 */
export const CONSOLE_CSS = `
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#fff;line-height:1.5}
a{color:#0969da}
a:focus,button:focus,input:focus,textarea:focus,select:focus{outline:3px solid #1f2328;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem}
.skip:focus{left:.5rem}
header{border-bottom:1px solid #d0d7de;padding:.75rem 1.5rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}
header .brand{font-weight:700;color:#1f2328;text-decoration:none}
header nav ul{list-style:none;margin:0;padding:0;display:flex;gap:1rem}
header form{margin-left:auto}
main{padding:1rem 1.5rem 3rem;max-width:80rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:2rem 0 .5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.92rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa}
code,.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88rem}
.muted{color:#59636e}
.notice{border:1px solid #1a7f37;background:#dafbe1;color:#0f3d1f;padding:.6rem 1rem;border-radius:6px}
.error{border:1px solid #b42318;background:#ffebe9;color:#7a1610;padding:.6rem 1rem;border-radius:6px}
.field-error{color:#b42318}
.status-bad{color:#b42318;font-weight:600}
.status-warn{color:#7d4e00;font-weight:600}
.status-ok{color:#1a7f37;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.5rem;margin:0 0 1rem}
dl.facts dt{color:#59636e}
dl.facts dd{margin:0}
form.inline{display:inline}
.actions{display:flex;gap:.75rem;flex-wrap:wrap;margin:1rem 0}
button,.button{font:inherit;font-weight:600;border:0;border-radius:6px;padding:.5rem 1rem;background:#0969da;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:#0969da;border:1px solid #0969da}
button.danger,.button.danger{background:#b42318;color:#fff}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=password],input[type=text],textarea,select{font:inherit;width:100%;max-width:36rem;padding:.45rem .6rem;border:1px solid #59636e;border-radius:6px;color:#1f2328;background:#fff}
textarea{min-height:6rem}
.hint{color:#59636e;font-size:.9rem;margin:.25rem 0}
.secret{font-family:ui-monospace,monospace;font-size:1rem;background:#f6f8fa;border:1px solid #d0d7de;padding:.75rem;word-break:break-all}
.filters{display:flex;gap:1rem;align-items:flex-end;flex-wrap:wrap}
.filters label{margin:0 0 .25rem}
.filters div{min-width:14rem}
`;
