package datagen

import (
	"strconv"
	"time"
)

// baseTime is the clock datagen's content and modification times start
// from: generated trees look like they were written on New Year's Day 2026.
var baseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// appendPad appends v in decimal, zero-padded to width digits.
func appendPad(b []byte, v int64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], v, 10)
	if pad := width - len(s); pad > 0 {
		b = append(b, zeros[:pad]...)
	}
	return append(b, s...)
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// appendSeconds appends a Unix time in milliseconds as seconds with three
// decimals ("1767225600.123"), the way AWS APIs serialize timestamps.
func appendSeconds(b []byte, ms int64) []byte {
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	return appendPad(b, ms%1000, 3)
}

// isoClock formats Unix times in milliseconds (after 1970) in ISO 8601 form
// ("2026-01-01T00:00:00.123Z"). It formats the date once a day and the
// time of day by hand: records are written in time order, many a second.
type isoClock struct {
	day  int64  // days since the epoch of date
	date []byte // "2006-01-02T"
}

func (c *isoClock) append(b []byte, ms int64) []byte {
	sec := ms / 1000
	if day := sec / 86400; day != c.day || c.date == nil {
		c.day = day
		c.date = time.Unix(day*86400, 0).UTC().AppendFormat(c.date[:0], "2006-01-02T")
	}
	sec %= 86400
	b = append(b, c.date...)
	b = append(b, byte('0'+sec/36000), byte('0'+sec/3600%10), ':',
		byte('0'+sec/600%6), byte('0'+sec/60%10), ':',
		byte('0'+sec%60/10), byte('0'+sec%10), '.',
		byte('0'+ms/100%10), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	return b
}

// appendMoney appends cents as a decimal amount ("123.45").
func appendMoney(b []byte, cents int64) []byte {
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	return appendPad(b, cents%100, 2)
}

// appendWords appends n words from the vocabulary, separated by spaces.
func appendWords(g *rng, b []byte, n int) []byte {
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, pick(g, words)...)
	}
	return b
}

// Vocabularies. Small, fixed lists: real application data repeats its keys,
// statuses and messages, and that repetition is what makes it compress.
var (
	words = []string{
		"order", "customer", "payment", "invoice", "shipment", "refund", "cart",
		"checkout", "session", "token", "retry", "timeout", "queue", "batch",
		"worker", "cache", "miss", "hit", "user", "account", "created",
		"updated", "deleted", "pending", "failed", "succeeded", "express",
		"standard", "priority", "warehouse", "berlin", "dublin", "virginia",
		"gift", "wrap", "discount", "coupon", "loyalty", "tier", "gold",
	}
	statuses   = []string{"PENDING", "CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED"}
	currencies = []string{"EUR", "USD", "GBP", "JPY", "CHF"}
	levels     = []string{"INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"}
	apps       = []string{"orders-api", "payments-worker", "inventory-sync", "notifier"}
	messages   = []string{
		"GET /api/v1/orders/{id} 200",
		"POST /api/v1/orders 201",
		"GET /api/v1/customers/{id} 200",
		"PUT /api/v1/carts/{id} 204",
		"GET /api/v1/products/{id} 404",
		"received message {id} from sqs queue orders-queue",
		"published event {id} to sns topic order-events",
		"dynamodb PutItem table=orders key={id}",
		"dynamodb Query table=customers index=by-email key={id}",
		"retrying request {id} after throttling",
		"lambda invocation {id} finished",
		"cache miss for key {id}",
		"payment {id} authorized",
		"payment {id} declined: insufficient funds",
	}
	eventTypes = []string{"OrderPlaced", "OrderPaid", "OrderShipped", "CartUpdated", "PageViewed", "UserSignedUp"}
	pagePaths  = []string{"/", "/products", "/products/{id}", "/cart", "/checkout", "/account", "/search"}
	userAgents = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"aws-sdk-java/2.25.1 Linux/6.6 OpenJDK_64-Bit_Server_VM/21.0.1",
		"Boto3/1.34.14 md/Botocore#1.34.14 ua/2.0 os/linux#6.6 lang/python#3.12.1",
	}
)
