-- wrk script: POST a form with a new e-mail address in every request, so every request
-- creates a new lead (or contact submission). Used by bench/gated_page.py:
--   wrk -s bench/post_form.lua URL -- CSRF_TOKEN BODY_BEFORE_ADDRESS BODY_AFTER_ADDRESS TAG
-- Each thread numbers its requests; the address is TAG-THREAD-N@example.org.

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

function init(args)
   token, before, after, tag = args[1], args[2], args[3], args[4]
   counter = 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Cookie"] = "csrftoken=" .. token
end

function request()
   counter = counter + 1
   local address = tag .. "-" .. thread_number .. "-" .. counter .. "%40example.org"
   return wrk.format(nil, nil, nil, before .. address .. after)
end
