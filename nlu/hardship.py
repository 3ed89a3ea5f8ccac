"""Words of hardship: the causes a villager names (因病, 因灾, …), a request to declare, and a question of progress.

Shared by the declaration service (which reads the cause from a description) and the NLU featurizer (which tells
the intent classifier that a message names a cause of hardship, asks to declare, or asks how far something got).
"""

from __future__ import annotations

import re

# Words that name a cause, checked in this order. An accident that put someone in hospital is an accident; a flood
# that ruined a greenhouse is a disaster.
CAUSE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "因意外事故",
        re.compile(
            r"车祸|撞了|被撞|撞伤|摔(?:了|下|伤|断|坏)|掉下来|从.{0,6}上(?:摔|掉)|事故|工伤|砸(?:了|伤|断)|"
            r"触电|电打|溺水|淹死|烧伤|烫伤|出事了|意外|工地出事|卷进|轧(?:了|断|伤)"
        ),
    ),
    (
        "因灾",
        re.compile(
            r"冰雹|雹子|下雹|洪水|发大水|大水|水淹|涝|干旱|旱(?:得|了|死)|大旱|大风|台风|龙卷风|刮(?:塌|倒|跑|没)|"
            r"地震|火灾|着火|失火|起火|烧(?:了|没|光)|雪灾|冻(?:死|坏)|霜冻|倒春寒|绝收|没收成|受灾|遭灾|灾|塌了|泥石流|山洪|"
            r"雨水太大|泡了|淹了|冲了|冲毁|冲垮|虫灾"
        ),
    ),
    (
        "因学",
        re.compile(r"学费|上学|上大学|考上|读书|念书|上高中|上中专|上技校|大学|学杂费|住宿费|供不起.{0,3}(?:学|书)"),
    ),
    ("因残", re.compile(r"残疾|残了|致残|瘸|截肢|失明|眼瞎|瞎了|聋|哑巴|腿断|胳膊断|手断|落下残|伤残")),
    (
        "因病",
        re.compile(
            r"病|住院|手术|开刀|癌|肿瘤|白血|尿毒|透析|化疗|脑梗|脑出血|脑溢血|中风|偏瘫|瘫|心脏|吃药|看病|医院|"
            r"ICU|重症|抢救|医药费|药费|治疗|发烧|骨折"
        ),
    ),
    (
        "务工收入减少/失业",
        re.compile(
            r"失业|没活|没有活|没工作|找不到活|找不着活|下岗|倒闭|裁员|停工|停产|工钱|工资|打工|辞退|"
            r"开除|被辞|厂子|没班上|活少|没事干|讨薪"
        ),
    ),
    (
        "产业经营失败",
        re.compile(
            r"赔了|亏了|赔钱|亏本|赔本|赔光|亏光|(?:猪|鸡|鸭|羊|牛|鱼|兔|蜂).{0,6}死|瘟|卖不出去|卖不掉|"
            r"滞销|烂在|烂了|大棚|养殖|生意|买卖|黄了|关门|倒闭了店|店|经营|果子|果园|种的|合作社"
        ),
    ),
)
OTHER = "其他"
# When both are named, the first is the cause and the others its consequences: an accident put him in hospital, the
# flood ruined the greenhouse, the illness cost the job.
DOMINATES = {
    "因意外事故": ("因病", "因残"),
    "因灾": ("产业经营失败", "务工收入减少/失业"),
    "因病": ("务工收入减少/失业",),
    "因残": ("务工收入减少/失业",),
}
# A request to declare without saying what happened: 我要申报困难, 申请防返贫监测.
REQUEST_WORDS = re.compile(r"申报|申办|伸报|申请|报困难|报个?难|登记|监测|检测|帮扶|救助|shenbao|kunnan", re.I)
# Words of declaring hardship itself (narrower than REQUEST_WORDS, which also has 申请/救助/监测 of programme names).
DECLARE_WORDS = re.compile(r"申报|申办|伸报|报困难|报个?难|困难户|难处|报上|登记上|shenbao|kunnan", re.I)
# A question how far something has got: 到哪一步了, 批了没, 有信没, 咋没动静.
PROGRESS_WORDS = re.compile(
    r"进度|到哪|哪一步|咋样了|怎么样了|结果|批了|批下|批没|审核|核实了|核了|有信|信儿|消息|回音|动静|来人|石沉大海|"
    r"多久|多长时间|啥时候|还没|了没|了吗|了不|成了|过了没|编号|jindu|jieguo",
    re.I,
)
