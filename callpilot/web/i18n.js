// The pages in the reader's language: Chinese (中文) or English, chosen from the browser's language unless the
// reader picked one with the switch in the top bar (kept in localStorage). Text nodes, placeholders and titles
// whose English text is in ZH are translated as the page loads and whenever a script adds or changes content.
(function () {
  "use strict";
  var KEY = "callpilot.lang";
  var ZH = {
    // Shared
    "callpilot": "callpilot", "Sign in": "登录", "Sign out": "退出", "Agent": "坐席", "Agents": "坐席",
    "Queue": "队列", "Queues": "队列", "Caller": "来电者", "Language": "语言", "Intent": "意图", "Intents": "意图",
    "Topics": "话题", "Done": "完成", "none": "无", "Search": "搜索", "Clear": "清除", "Call": "通话",
    "Orders": "订单", "Returns": "退货", "Technical support": "技术支持", "Billing": "账务", "General": "综合",
    "English": "英语", "Chinese": "中文", "Customer": "客户", "Summary": "摘要", "Reason": "原因",
    // Agent desk
    "Agent desk": "坐席工作台", "callpilot agent desk": "callpilot 坐席工作台", "signed out": "未登录",
    "With the token": "使用令牌", "printed (run it with the server's": "打印出的令牌（运行时使用服务器的",
    "(run it with the server's": "（运行时使用服务器的", "). The desk asks for the microphone.": "）。工作台会请求使用麦克风。",
    "agent token": "坐席令牌", "Available": "空闲", "Away": "离开", "Incoming call": "来电", "Accept": "接听",
    "Decline": "拒接", "On call": "通话中", "Hold": "保持", "Resume": "恢复", "Transfer to queue…": "转到队列…",
    "or agent id": "或坐席ID", "or outside number / sip:": "或外部号码 / sip:", "Transfer": "转接", "Consult first": "先咨询再转接", "Complete transfer": "完成转接", "Cancel consult": "取消咨询", "Attended transfer: talk to the outside number first, the caller on hold": "咨询转接：先与外部号码通话，来电保持中", "Hand back to bot": "交回机器人", "Hang up": "挂断",
    "Caller level": "来电音量", "Wrap-up": "话后处理", "Disposition…": "处理结果…", "Resolved": "已解决",
    "Follow-up needed": "需要跟进", "Escalated": "已升级", "Callback promised": "已承诺回电", "Wrong queue": "排错队列",
    "Caller gone": "来电者已挂断", "notes for the call log": "通话记录备注", "About the caller": "来电者信息",
    "Details the caller gave": "来电者提供的信息", "Conversation with the bot": "与机器人的对话",
    "Details (codes)": "详细信息（代码）", "Intents the bot recognised": "机器人识别出的意图",
    "The caller asked for a person": "来电者要求转人工", "The request needs an agent": "这个请求需要人工处理",
    "The bot could not understand the caller": "机器人没能听懂来电者",
    "The caller could not give valid details": "来电者没能提供有效信息", "A handoff rule applies": "适用转人工规则",
    "The caller chose an agent in the phone menu": "来电者在按键菜单中选择了人工",
    "The bot could not complete the request": "机器人没能完成请求", "Tier / city": "等级 / 城市", "Email": "邮箱",
    "Why a person": "为何转人工", "Phone menu": "按键菜单", "Call id": "通话ID", "Priority": "优先级",
    "Customer id": "客户ID", "Slots": "槽位", "Connected: speak to the caller.": "已接通：请与来电者通话。", "Connected on your phone: hold, transfer and hang up work here too.": "已在您的话机上接通：保持、转接和挂断在这里也可以操作。",
    "Wrap-up saved.": "话后处理已保存。", "Unknown or expired token.": "令牌无效或已过期。",
    // Supervisor
    "Supervisor": "班长", "callpilot supervisor": "callpilot 班长", "callpilot supervisor: sign in": "callpilot 班长：登录",
    "The floor": "现场", "Live queues": "实时队列", "Live calls": "实时通话", "Waiting calls": "等待中的来电",
    "Callers on hold": "保持中的来电", "Callbacks requested": "回电请求", "Backup number": "备用号码", "Divert new calls": "新来电转备用号码", "Answer calls again": "恢复接听", "attempts": "尝试次数", "agents available / signed in": "空闲坐席 / 已登录",
    "agents available": "空闲坐席", "longest wait": "最长等待", "expected wait": "预计等待", "waiting": "等待中",
    "online": "在线", "skills": "技能", "state": "状态", "calls taken": "已接来电", "talking for": "通话时长",
    "position": "排队位置", "reconnecting…": "重新连接中…", "connecting…": "连接中…", "no queue service": "没有队列服务",
    "With a supervisor or admin API key:": "使用班长或管理员 API 密钥：", "how calls ring": "振铃方式",
    // Dashboard
    "Dashboard": "仪表盘", "callpilot dashboard": "callpilot 仪表盘", "Today and the last 7 days": "今天和最近7天",
    "Last 7 days": "最近7天", "last 7 days": "最近7天", "Hot topics": "热门话题", "what callers asked most": "来电者最常问的问题",
    "Alerts": "告警", "answer rate": "接通率", "answered": "已接通", "abandoned": "放弃", "offered": "转人工",
    "containment": "机器人自助率", "average handle time": "平均处理时长", "calls": "来电", "hour (today)": "小时（今天）",
    "day": "天", "rule": "规则", "none: no alert rules": "无：没有告警规则", "none: no calls today": "无：今天没有来电",
    "none: no queues configured": "无：没有配置队列", "· refreshes every 30 s · days are UTC days": "· 每30秒刷新 · 按UTC日期",
    "As of": "截至", "Calls": "来电", "Offered to agents": "转人工", "Answer rate": "接通率",
    "Abandonment rate": "放弃率", "Avg speed of answer": "平均应答速度", "Avg handle time": "平均处理时长",
    "Bot containment": "机器人自助率", "Handoff rate": "转人工率", "Calls per day": "每日来电", "Rates per day": "每日比率",
    "Service level": "服务水平", "With a supervisor or admin API key": "使用班长或管理员 API 密钥",
    "This call was not recorded.": "这通电话没有录音。", "Recordings are for supervisors and admins.": "只有班长和管理员可以听录音。",
    "The recording file is missing.": "录音文件不存在。",
    // The demo's intents as the pages show them (`human()`)
    "Greet": "问候", "Goodbye": "再见", "Affirm": "肯定", "Deny": "否定", "Thank": "感谢", "Repeat": "重复",
    "Check order status": "查询订单状态", "Delivery time": "送货时间", "Change delivery address": "修改收货地址",
    "Cancel order": "取消订单", "Return policy": "退货政策", "Refund status": "退款进度", "Warranty info": "保修信息",
    "Product info": "产品信息", "Opening hours": "营业时间", "Store location": "门店位置", "Payment methods": "支付方式",
    "Invoice request": "申请发票", "Track repair": "维修进度", "Book installation": "预约安装", "Account help": "账户问题",
    "Complaint": "投诉", "Talk to human": "转人工", "Technical fault": "故障报修", "Billing dispute": "扣款异议",
    "Out of scope": "超出范围",
    // Call history
    "Call history": "通话历史", "callpilot: call history": "callpilot：通话历史", "Search calls": "搜索通话",
    "Export CSV": "导出CSV", "From": "从", "To": "到", "Channel": "渠道", "Outcome": "结果", "Length": "时长",
    "Started": "开始时间", "any": "任意", "at least seconds": "至少（秒）", "at most seconds": "最多（秒）",
    "No call matches.": "没有匹配的通话。", "Older →": "更早 →", "← Newer": "← 更新", "Timeline": "时间线",
    "Recording": "录音", "Ticket": "工单", "Note for the agent": "给坐席的备注", "· times are UTC": "· 时间为UTC",
    "Stereo: the caller on the left, the bot and the agent on the right. Playing it is written to the audit log.":
      "立体声：左声道为来电者，右声道为机器人和坐席。播放会记入审计日志。",
    // Trainer
    "Trainer": "训练师", "callpilot trainer": "callpilot 训练师", "callpilot trainer: sign in": "callpilot 训练师：登录",
    "The trainer's workbench": "训练师工作台", "With a trainer or admin API key:": "使用训练师或管理员 API 密钥：",
    "Inbox: what callers said that the bot did not handle": "收件箱：机器人没处理好的来电内容", "Clusters": "聚类",
    "Caller said": "来电者说", "Bot guessed": "机器人猜测", "Assign to": "归入", "Examples": "例句", "File": "文件",
    "Train a new model": "训练新模型", "Train and compare": "训练并比较", "Held-out accuracy": "保留集准确率",
    "Models": "模型", "Model": "模型", "Trained": "训练时间", "Conversations": "对话",
    "To mark an entity: select its words in the text, type the entity name next to the intent.":
      "标注实体：在文本中选中词语，在意图旁输入实体名称。",
    "Type an existing intent to assign a whole cluster, or a new name to create an intent from it (an intent needs 5 examples at least).":
      "输入已有意图可将整个聚类归入该意图，输入新名称则用它创建新意图（一个意图至少需要5个例句）。"
  };
  var PREFIXES = [  // dynamic messages: an English start, the rest kept as it is
    ["Call from ", "来电："], ["Call ended: ", "通话结束："], ["The call stopped ringing: ", "来电已停止振铃："],
    ["Could not do that: ", "操作失败："], ["No microphone: ", "没有麦克风："], ["Disconnected (", "连接断开（"]
  ];

  function chosen() {
    var saved = null;
    try { saved = window.localStorage.getItem(KEY); } catch (e) { saved = null; }
    if (saved === "zh" || saved === "en") return saved;
    var wanted = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return wanted.toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  }

  var lang = chosen();

  function say(text) {
    var trimmed = text.trim();
    if (!trimmed) return null;
    if (Object.prototype.hasOwnProperty.call(ZH, trimmed)) return text.replace(trimmed, ZH[trimmed]);
    for (var i = 0; i < PREFIXES.length; i++) {
      if (trimmed.indexOf(PREFIXES[i][0]) === 0) return text.replace(PREFIXES[i][0], PREFIXES[i][1]);
    }
    return null;
  }

  function translate(node) {
    if (lang !== "zh" || !node) return;
    if (node.nodeType === 3) {
      var said = say(node.nodeValue);
      if (said !== null && said !== node.nodeValue) node.nodeValue = said;
      return;
    }
    if (node.nodeType !== 1 || node.tagName === "SCRIPT" || node.tagName === "STYLE" || node.id === "lang-switch") return;
    ["placeholder", "title", "aria-label"].forEach(function (name) {
      var value = node.getAttribute(name);
      var said = value && say(value);
      if (said) node.setAttribute(name, said);
    });
    for (var child = node.firstChild; child; child = child.nextSibling) translate(child);
  }

  function addSwitch() {
    if (document.getElementById("lang-switch")) return;
    var button = document.createElement("button");
    button.id = "lang-switch";
    button.type = "button";
    button.className = "lang-switch";
    button.textContent = lang === "zh" ? "English" : "中文";
    button.title = lang === "zh" ? "Switch to English" : "切换到中文";
    button.addEventListener("click", function () {
      try { window.localStorage.setItem(KEY, lang === "zh" ? "en" : "zh"); } catch (e) { /* private mode */ }
      window.location.reload();
    });
    var bar = document.querySelector("nav.top") || document.body;
    bar.appendChild(button);
  }

  function start() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    addSwitch();
    translate(document.body);
    if (lang === "zh") {
      document.title = say(document.title) || document.title;
      new MutationObserver(function (changes) {
        changes.forEach(function (change) {
          if (change.type === "characterData") translate(change.target);
          change.addedNodes.forEach(translate);
        });
      }).observe(document.body, {childList: true, subtree: true, characterData: true});
    }
  }

  window.callpilotLanguage = lang;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
