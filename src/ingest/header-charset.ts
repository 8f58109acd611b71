import { isUtf8 } from 'node:buffer';
import * as sbcs from 'chardet/lib/encoding/sbcs.js';
import iconv from 'iconv-lite';

// Header bytes above 0x7F without an RFC 2047 encoded word are not allowed by RFC 5322, but older
// Asian mail clients (and some Windows ones) write subjects, display names and file names in the
// body's charset: GB2312/GBK, Big5, Shift_JIS, EUC-KR, Windows-125x. RFC 6532 allows raw UTF-8.
// mailparser reads such bytes as UTF-8 and turns every invalid sequence into U+FFFD, so the
// original is lost: the raw bytes are decoded here before mailparser sees them.
//
// A subject is a dozen characters: too short for chardet's frequency statistics (it answers
// confidence 10 for every CJK charset on a 7-character GB2312 subject). So the CJK charsets are
// tried by decoding strictly (no invalid sequence, the bytes round-trip) and scoring how
// plausible the text is: the share of frequent characters (a short list of the most frequent
// hanzi and Hangul syllables, then the charset's level-1 block, kana for Japanese) — bytes of
// another CJK charset decode to rare characters or fail. Japanese text without kana is unlikely.
// The declared charset (the part's own, else the first one declared in the message) wins a tie
// and is the fallback when nothing scores; then chardet (single-byte charsets: its statistics
// work on short Latin/Cyrillic text), then Windows-1252.

const UTF8_ASCII = /^(utf-?8|us-?ascii|ascii)$/i;

/**
 * Bytes that are valid UTF-8 (RFC 6532 headers) are kept as UTF-8. (`buffer.isUtf8`: the same
 * strict validation as a fatal TextDecoder, without an exception per invalid header.)
 */
function isValidUtf8(bytes: Buffer): boolean {
  return isUtf8(bytes);
}

/**
 * UTF-8 text with one broken sequence (a header cut in the middle of a character by the sender's
 * mailer) is UTF-8: the broken bytes are dropped. Null when it is not that.
 */
function nearlyUtf8(bytes: Buffer): string | null {
  const text = bytes.toString('utf8');
  const broken = text.split('\ufffd').length - 1;
  if (broken !== 1) return null;
  let multibyte = 0;
  for (const ch of text) if (ch.codePointAt(0)! >= 0x80 && ch !== '\ufffd') multibyte++;
  return multibyte >= 3 ? text.replace('\ufffd', '') : null;
}

function strictDecode(bytes: Buffer, charset: string): string | null {
  if (!iconv.encodingExists(charset)) return null;
  const text = iconv.decode(bytes, charset);
  if (text.includes('\ufffd')) return null;
  // C1 controls never appear in real text: a single-byte charset that maps bytes 0x80-0x9F to them is wrong.
  if (/[\u0080-\u009f]/.test(text)) return null;
  if (!iconv.encode(text, charset).equals(bytes)) return null;
  return text;
}

interface CjkCandidate {
  charset: string;
  /** 1 for a character from the charset's common block, less for rarer ones, 0 for none. */
  weight(ch: string, encoded: Buffer): number;
  needsKana?: boolean;
}

/** About 800 of the most frequent simplified hanzi (and common business words): the GB reading's evidence. */
const COMMON_SC = new Set('的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨炮旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵尺掩缩戴沿鸡您票函邮账户密码录谢款订询样惠促招聘课费');
/** The same for traditional characters (Big5). */
const COMMON_TC = new Set('的一是不了在人有我他這個們中來上大為和國地到以說時要就出會可也你對生能而子那得於著下自之年過發後作裡用道行所然家種事成方多經麼去法學如都同現當沒動面起看定天分還進好小部其些主樣理心她本前開但因只從想實日軍者意無力它與長把機十民第公此已工使情明性知全三又關點正業外將兩高間由問很最重並物手應戰向頭文體政美相見被利什二等產或新己制身果加西斯月話合回特代內信表化老給世位次度門任常先海通教兒原東聲提立及比員解水名真論處走義各入幾口認條平系氣題活爾更別打女變四神總何電數安少報才結反受目太量再感建務做接必場件計管期市直德資命山金指克許統區保至隊形社便空決治展馬科司五基眼書非則聽白卻界達光放強即像難且權思王象完設式色路記南品住告類求據程北邊死張該交規萬取拉格望覺術領共確傳師觀清今切院讓識候帶導爭運笑飛風步改收根乾造言聯持組每濟車親極林服快辦議往元英士證近失轉夫令準布始怎呢存未遠叫台單影具羅字愛擊流備兵連調深商算質團集百需價花黨華城石級整府離況亞請技際約示復病息究線似官火斷精滿支視消越器容照須九增研寫稱企八功嗎包片史委乎查輕易早曾除農找裝廣顯吧阿李標談吃圖念六引歷首醫局突專費號盡另周較注語僅考落青隨選列武紅響雖推勢參希古眾構房半節土投某案黑維革劃敵致陳律足態護七興派孩驗責營星夠章音跟志底站嚴巴例防族供效續施留講型料終答緊黃絕奇察母京段依批群項故按河米圍江織害鬥雙境客紀採舉殺攻父蘇密低朝友訴止細願千值仍男錢破網熱助倒育屬坐帝限船臉職速刻樂否剛威毛狀率甚獨球般普怕彈校苦創假久錯承印晚蘭試股拿腦預誰益陽若哪微尼繼送急血驚傷素藥適波夜省初喜衛源食險待述陸習置居勞財環排福納歡雷警獲模充負雲停木遊龍樹疑層冷洲衝射略範竟句室異激漢村哈策演簡卡罪判擔州靜退既衣您宗積餘痛檢差富靈協角佔配徵修皮揮勝降階審沉堅善媽劉讀啊超免壓銀買皇養伊懷執副亂抗犯追幫宣佛歲航優怪香著田鐵控稅左右份穿藝背陣草腳概惡塊頓敢守酒島託央戶烈洋哥索胡款靠評版寶座釋景顧弟登貨互付伯慢歐換聞危忙核暗姐介壞討麗良序升監臨亮露永呼味野架域沙掉括艦魚雜誤灣吉減編楚肯測敗屋跑夢散溫困劍漸封救貴槍缺樓縣尚毫移娘朋畫班智亦耳恩短掌恐遺固席松秘謝魯遇康慮幸均銷鐘詩藏趕劇票損忽巨炮舊端探湖錄葉春鄉附吸予禮港雨呀板庭婦歸睛飯額含順輸搖招婚脫補謂督毒油療旅澤材滅逐莫筆亡鮮詞聖擇尋廠睡博勒煙授諾倫岸奧唐賣俄炸載洛健堂旁宮喝借君禁陰園謀宋避抓榮姑孫逃牙束跳頂玉鎮雪午練迫爺篇肉嘴館遍凡礎洞卷坦牛寧紙諸訓私莊祖絲翻暴森塔默握戲隱熟骨訪弱蒙歌店鬼軟典欲薩伙遭盤爸擴蓋弄雄穩忘億刺擁徒姆楊齊賽趣曲刀床迎冰虛玩析窗醒妻透購替塞努休虎揚途侵刑綠兄迅套貿畢唯谷輪庫跡尤競街促延震棄甲偉麻川申緩潛閃售燈針哲絡抵朱埃抱鼓植純夏忍頁傑築折鄭貝尊吳秀混臣雅振染盛怒舞圓搞狂措姓殘秋培迷誠寬宇猛擺梅毀伸摩盟末乃悲拍丁趙尺掩縮戴沿雞函郵賬密碼錄謝款訂詢樣惠聘課');
/** About 150 frequent Hangul syllables. */
const COMMON_KO = new Set('이다는의에하고를서요안녕세니습사지로가한기그을도은수있것들게어나리아해시자대인정보주부일전드상제우리문회견적내및감합께분무신원화계약관청확발송바랍드립메첨파님귀품격결배센터비스벤트할료광거공변경밀번호로그계등록완좋루되오늘후간월년만입했없었과와더또한번요청드려받으실때까지저희여러분께서알림소식참석모집행사업담당자연락처');

const isKana = (cp: number): boolean => cp >= 0x3040 && cp <= 0x30ff;
const isHangul = (cp: number): boolean => cp >= 0xac00 && cp <= 0xd7a3;
const isHan = (cp: number): boolean => cp >= 0x4e00 && cp <= 0x9fff;
/** Full-width punctuation and forms (、。「」！, full-width digits): common in every CJK text. */
const isCjkPunct = (cp: number): boolean => (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xff00 && cp <= 0xffef);

/** Chinese: the script's common hanzi 1, CJK punctuation 0.8, other hanzi 0.5 in the level-1 block (`level1`), else 0.2. */
const hanziWeight =
  (common: Set<string>, level1: (encoded: Buffer) => boolean) =>
  (ch: string, b: Buffer): number => {
    const cp = ch.codePointAt(0)!;
    if (isCjkPunct(cp)) return 0.8;
    if (!isHan(cp)) return 0;
    if (common.has(ch)) return 1;
    return level1(b) ? 0.5 : 0.2;
  };

/** Japanese: kana and CJK punctuation 1, kanji 1 when the lead byte is in the level-1 block [lo, hi], else 0.3. */
const kanjiWeight =
  (lo: number, hi: number) =>
  (ch: string, b: Buffer): number => {
    const cp = ch.codePointAt(0)!;
    if (isKana(cp) || isCjkPunct(cp)) return 1;
    if (!isHan(cp)) return 0;
    return b[0]! >= lo && b[0]! <= hi ? 1 : 0.3;
  };

const CJK: CjkCandidate[] = [
  // GB18030 is a superset of GB2312 and GBK: level-1 hanzi (the 3,755 common ones) are lead bytes 0xB0-0xD7.
  { charset: 'gb18030', weight: hanziWeight(COMMON_SC, (b) => b.length === 2 && b[0]! >= 0xb0 && b[0]! <= 0xd7 && b[1]! >= 0xa1) },
  // Big5 level-1 (5,401 common hanzi): lead bytes 0xA4-0xC6.
  { charset: 'big5', weight: hanziWeight(COMMON_TC, (b) => b[0]! >= 0xa4 && b[0]! <= 0xc6) },
  // Shift_JIS: kana, and level-1 kanji at lead bytes 0x88-0x98.
  { charset: 'shift_jis', needsKana: true, weight: kanjiWeight(0x88, 0x98) },
  // EUC-JP: kana, and level-1 kanji at lead bytes 0xB0-0xCF.
  { charset: 'euc-jp', needsKana: true, weight: kanjiWeight(0xb0, 0xcf) },
  {
    // EUC-KR (CP949): Hangul syllables; Hanja are rare in modern Korean text.
    charset: 'cp949',
    weight: (ch) => {
      const cp = ch.codePointAt(0)!;
      if (COMMON_KO.has(ch) || isCjkPunct(cp)) return 1;
      if (isHangul(cp)) return 0.5;
      return isHan(cp) ? 0.2 : 0;
    },
  },
];

const CJK_ALIASES: Record<string, string> = {
  gb2312: 'gb18030',
  gbk: 'gb18030',
  gb18030: 'gb18030',
  'x-gbk': 'gb18030',
  cp936: 'gb18030',
  big5: 'big5',
  'big5-hkscs': 'big5',
  shift_jis: 'shift_jis',
  'shift-jis': 'shift_jis',
  sjis: 'shift_jis',
  'x-sjis': 'shift_jis',
  'windows-31j': 'shift_jis',
  cp932: 'shift_jis',
  'euc-jp': 'euc-jp',
  // A Japanese body in ISO-2022-JP (7-bit) next to raw 8-bit header bytes: those are Shift_JIS.
  'iso-2022-jp': 'shift_jis',
  'euc-kr': 'cp949',
  'ks_c_5601-1987': 'cp949',
  cp949: 'cp949',
};

/** Score in [0, 1] of the non-ASCII characters of `text` under `c`. */
function plausibility(text: string, c: CjkCandidate): number {
  let total = 0;
  let sum = 0;
  let kana = false;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) continue;
    total++;
    if (isKana(cp)) kana = true;
    sum += c.weight(ch, iconv.encode(ch, c.charset));
  }
  if (total === 0) return 0;
  const score = sum / total;
  return c.needsKana && !kana ? score * 0.5 : score;
}

/**
 * chardet 2.2.0's `analyse` restricted to its single-byte recognisers, in its order: the only
 * matches decodeUnlabelledBytes ever uses (it skips chardet's UTF-8/16/32, ISO-2022, ASCII and CJK
 * multi-byte answers, which cost about 40 % of `analyse` on long header lines). Same context as
 * `analyse` builds, same stable sort by confidence, so the single-byte matches come out in the
 * same order (header-charset.test.ts checks it against `analyse` on corpus and random bytes).
 */
const SINGLE_BYTE_RECOGNISERS = [
  new sbcs.ISO_8859_1(), new sbcs.ISO_8859_2(), new sbcs.ISO_8859_5(), new sbcs.ISO_8859_6(), new sbcs.ISO_8859_7(),
  new sbcs.ISO_8859_8(), new sbcs.ISO_8859_9(), new sbcs.windows_1251(), new sbcs.windows_1256(), new sbcs.windows_1257(),
  new sbcs.windows_1258(), new sbcs.windows_874(), new sbcs.KOI8_R(),
];

export function analyseSingleByte(bytes: Uint8Array): Array<{ name: string; confidence: number }> {
  const byteStats: number[] = [];
  for (let i = 0; i < 256; i++) byteStats[i] = 0;
  for (let i = bytes.length - 1; i >= 0; i--) byteStats[bytes[i]! & 0xff]!++;
  let c1Bytes = false;
  for (let i = 0x80; i <= 0x9f; i++) {
    if (byteStats[i] !== 0) {
      c1Bytes = true;
      break;
    }
  }
  const context = { byteStats, c1Bytes, rawInput: bytes, rawLen: bytes.length, inputBytes: bytes, inputLen: bytes.length };
  return SINGLE_BYTE_RECOGNISERS.map((r) => r.match(context))
    .filter((m) => !!m)
    .sort((a, b) => b.confidence - a.confidence);
}

/**
 * Charset detection reads at most this many bytes of a value. A real subject or display name is far
 * shorter; header lines of tens of kilobytes of 8-bit bytes are binary data taken for a header (a
 * TNEF or OLE file fed as a message), where trying five CJK decodings and thirteen single-byte
 * recognisers on every byte cost 25–35 ms per message (docs/benchmarks.md, Ingest).
 */
const DETECTION_BYTES = 4096;

/**
 * The head of `bytes` that detection reads: all of it when short enough, else up to
 * DETECTION_BYTES, ending just after a byte below 0x30 (space, control or ASCII punctuation),
 * which is never inside a character of the multi-byte charsets tried here (their second and later
 * bytes are 0x30 or above), so the head decodes as the whole does.
 */
function detectionSample(bytes: Buffer): Buffer {
  if (bytes.length <= DETECTION_BYTES) return bytes;
  for (let i = DETECTION_BYTES - 1; i >= DETECTION_BYTES / 2; i--) if (bytes[i]! < 0x30) return bytes.subarray(0, i + 1);
  return bytes.subarray(0, DETECTION_BYTES);
}

/**
 * NUL and the C0 controls other than TAB, LF, CR and ESC (ISO-2022's shifts): never part of a
 * header written in any charset, nor of a character of the multi-byte charsets tried here.
 */
function hasBinaryControls(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x1b) return true;
  }
  return false;
}

/** The minimum plausibility for a CJK reading. */
const CJK_MIN_SCORE = 0.6;
/** chardet confidence (0-100) trusted for a single-byte charset. */
const SINGLE_BYTE_MIN_CONFIDENCE = 20;

export interface DecodedHeaderBytes {
  text: string;
  /** The charset used (lower-case iconv name), `utf-8` for valid UTF-8. */
  charset: string;
}

/**
 * Decodes raw header bytes that carry no charset label. `declared` is the charset the message
 * declares for its text (the fallback), or null.
 */
export function decodeUnlabelledBytes(bytes: Buffer, declared: string | null): DecodedHeaderBytes {
  if (isValidUtf8(bytes)) return { text: bytes.toString('utf8'), charset: 'utf-8' };
  // Control bytes no text charset writes in a header: binary data, read byte for byte.
  if (hasBinaryControls(bytes)) return { text: iconv.decode(bytes, 'windows-1252'), charset: 'windows-1252' };
  const sample = detectionSample(bytes);
  if (sample !== bytes) {
    // A long value: the charset is chosen on its head, then the whole value is decoded in it.
    const { charset } = decodeUnlabelledBytes(sample, declared);
    const text = charset === 'utf-8' ? nearlyUtf8(bytes) : charset === 'windows-1252' ? null : strictDecode(bytes, charset);
    if (text !== null) return { text, charset };
    return { text: iconv.decode(bytes, 'windows-1252'), charset: 'windows-1252' };
  }
  const mostlyUtf8 = nearlyUtf8(bytes);
  if (mostlyUtf8 !== null) return { text: mostlyUtf8, charset: 'utf-8' };
  const declaredName = declared && !UTF8_ASCII.test(declared) && iconv.encodingExists(declared) ? declared.toLowerCase() : null;
  const declaredCjk = declared ? (CJK_ALIASES[declared.toLowerCase()] ?? null) : null;

  let best: { charset: string; text: string; score: number } | null = null;
  for (const c of CJK) {
    const text = strictDecode(bytes, c.charset);
    if (text === null) continue;
    // The declared charset wins a tie.
    const score = plausibility(text, c) + (c.charset === declaredCjk ? 0.05 : 0);
    if (score >= CJK_MIN_SCORE && (!best || score > best.score)) best = { charset: c.charset, text, score };
  }
  if (best) return { text: best.text, charset: best.charset };
  // Nothing plausible enough (a short kanji-only subject): the declared charset, when the bytes are valid in it.
  const fallback = declaredCjk ?? declaredName;
  if (fallback) {
    const text = strictDecode(bytes, fallback);
    if (text !== null) return { text, charset: fallback };
  }
  for (const match of analyseSingleByte(bytes)) {
    if (match.confidence < SINGLE_BYTE_MIN_CONFIDENCE) break;
    const name = match.name.toLowerCase();
    if (name in CJK_ALIASES || name === 'utf-8' || name === 'ascii' || name.startsWith('utf-16') || name.startsWith('utf-32') || name.startsWith('iso-2022')) continue;
    const text = strictDecode(bytes, name);
    if (text !== null) return { text, charset: name };
  }
  return { text: iconv.decode(bytes, 'windows-1252'), charset: 'windows-1252' };
}

/** True when a binary string (one char per byte, as mailsplit hands header lines over) has 8-bit bytes. */
export function hasHighBytes(binary: string): boolean {
  return /[\u0080-\u00ff]/.test(binary);
}

/**
 * A header line as mailsplit hands it over (a binary string, one char per byte): its 8-bit runs
 * decoded and re-encoded as UTF-8 bytes (still a binary string), which mailparser then reads as
 * UTF-8. Lines without 8-bit bytes, or valid UTF-8, come back unchanged.
 */
export function transcodeHeaderLine(binary: string, declared: string | null): string {
  if (!hasHighBytes(binary)) return binary;
  const bytes = Buffer.from(binary, 'latin1');
  if (isValidUtf8(bytes)) return binary;
  // The whole line decides (more text, better odds; a Shift_JIS trail byte can be ASCII).
  const { text } = decodeUnlabelledBytes(bytes, declared);
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** A value that came out of a header as a binary string (mailsplit's file names): decoded text. */
export function decodeBinaryValue(binary: string, declared: string | null): string {
  if (!hasHighBytes(binary) || /[^\u0000-\u00ff]/.test(binary)) return binary; // eslint-disable-line no-control-regex
  return decodeUnlabelledBytes(Buffer.from(binary, 'latin1'), declared).text;
}
