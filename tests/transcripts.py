"""Whole conversations as neutral steps, shared by engine, channel and crash tests and the bench."""

from bot.domain.messages import Input, Photo, Press, Text

# A first-time volunteer: consent, profile, one complete proposal, submit.
FIRST_PROPOSAL: list[Input] = [
    Text("สวัสดีค่ะ"),
    Press("consent:yes:th"),
    Text("สมศรี ใจดี"),
    Text("081-234-5678"),
    Press("a:network:volunteer"),
    Text("กลุ่มอาสาบ้านแม่แจ่ม"),
    Press("a:district:5003"),
    Press("a:target_group:elderly"),
    Press("a:subgroup:unaware_of_rights"),
    Text("ผู้สูงอายุในหมู่บ้านไม่รู้สิทธิเบี้ยยังชีพและไม่มีคนพาไปลงทะเบียน 👵🏽"),
    Text("๓๕ คน"),
    Press("a:district:5003"),
    Text("ต.ท่าผา หมู่ 4"),
    Press("a:help_received:not_enough"),
    Text("ให้ อพม. ลงพื้นที่ช่วยลงทะเบียนและแจ้งสิทธิที่บ้าน"),
    Text("ผู้สูงอายุ 35 คนได้รับเบี้ยยังชีพครบ"),
    Text("วัดและ รพ.สต. ช่วยประสาน"),
    Press("a:budget:under_10k"),
    Press("t:responsible:provincial_office"),
    Press("t:responsible:local_admin"),
    Press("d:responsible"),
    Press("a:urgency:this_year"),
    Text("พาผู้สูงอายุลงทะเบียนเบี้ยยังชีพ"),
    Photo("photo-1"),
    Press("d:photos"),
    Press("submit"),
]

EXPECTED_ANSWERS = {
    "target_group": "elderly",
    "subgroup": "unaware_of_rights",
    "problem": "ผู้สูงอายุในหมู่บ้านไม่รู้สิทธิเบี้ยยังชีพและไม่มีคนพาไปลงทะเบียน 👵🏽",
    "people_affected": 35,
    "district": "5003",
    "location_text": "ต.ท่าผา หมู่ 4",
    "help_received": "not_enough",
    "solution": "ให้ อพม. ลงพื้นที่ช่วยลงทะเบียนและแจ้งสิทธิที่บ้าน",
    "expected_result": "ผู้สูงอายุ 35 คนได้รับเบี้ยยังชีพครบ",
    "resources": "วัดและ รพ.สต. ช่วยประสาน",
    "budget": "under_10k",
    "title": "พาผู้สูงอายุลงทะเบียนเบี้ยยังชีพ",
    "responsible": ["provincial_office", "local_admin"],
    "urgency": "this_year",
}

# A volunteer whose profile is stored: a second proposal without photos.
NEXT_PROPOSAL: list[Input] = [
    Text("/new"),
    Press("a:target_group:working_age"),
    Press("a:subgroup:single_mother"),
    Text("แม่เลี้ยงเดี่ยวรายได้ไม่พอเลี้ยงลูก ต้องทิ้งลูกไว้กับยาย"),
    Text("12"),
    Press("a:district:5001"),
    Text("/skip"),
    Press("a:help_received:none"),
    Text("ตั้งกองทุนช่วยค่าเลี้ยงดูเด็กเล็กและหางานที่ทำที่บ้านได้"),
    Text("แม่เลี้ยงเดี่ยวมีรายได้พอเลี้ยงลูก"),
    Text("/skip"),
    Text("/skip"),
    Press("t:responsible:community_fund"),
    Press("d:responsible"),
    Press("a:urgency:urgent"),
    Text("กองทุนเลี้ยงดูเด็กเล็กของแม่เลี้ยงเดี่ยว"),
    Text("/skip"),
    Press("submit"),
]
